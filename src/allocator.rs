//! The process's allocator: mimalloc, asked the way C asks it.
//!
//! glibc's malloc showed up at ~13% of a request's CPU, with lock
//! contention between the workers (issue 11's profile); mimalloc keeps a
//! heap per thread. The `mimalloc` crate's own `GlobalAlloc` passes every
//! allocation through `mi_malloc_aligned`, and in mimalloc 3 that takes a
//! slow path whenever the size's page has no free block and its block size
//! is not a power of two: it over-allocates `size + align - 1` from the next
//! size class, so the freed block goes back to that class and the size's
//! own page never gets a free block again. A frame's vectors and strings
//! (24, 40, 56... bytes) then took that path a third of the time
//! (callgrind, `bench/instructions.sh`; mimalloc_rust PR #170 proposes the
//! same fix upstream). Here, what plain `mi_malloc` already aligns goes
//! through it, and only wider alignments use the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as ffi;

/// mimalloc with plain calls where they give the alignment asked for.
pub struct Mimalloc;

/// Every mimalloc block is aligned to at least a word: block sizes are
/// multiples of it and pages start 16-byte aligned. C's malloc promises
/// the same (alignment for any object that fits), so a layout whose
/// alignment is at most a word, and at most its size, needs nothing more.
const PLAIN_ALIGN: usize = std::mem::size_of::<usize>();

fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// A new block for `layout`, from `plain_call` when it aligns enough, else
/// from `aligned_call`.
///
/// # Safety
/// `plain_call` and `aligned_call` are mimalloc's unaligned and aligned
/// forms of one allocation call.
#[inline]
unsafe fn fresh(
    layout: Layout,
    plain_call: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_call: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: the caller's promise; `plain` decides as the impl's comment says.
    unsafe {
        if plain(layout.align(), layout.size()) {
            plain_call(layout.size()).cast()
        } else {
            aligned_call(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every call is one of mimalloc's, with the size and alignment of
// the layout; `plain` sends a layout to an unaligned call only when that
// call's blocks are aligned enough (see `PLAIN_ALIGN`). mi_free and
// mi_realloc take any block mimalloc gave, aligned or not.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl's comment.
        unsafe { fresh(layout, ffi::mi_malloc, ffi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl's comment.
        unsafe { fresh(layout, ffi::mi_zalloc, ffi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract).
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new
        // block keeps its alignment (see the impl's comment).
        unsafe {
            if plain(layout.align(), new_size) {
                ffi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates, fills, grows and frees every size up to 600 bytes at
    /// every alignment up to 128, and checks the alignment and the bytes
    /// kept by each step.
    #[test]
    fn every_block_has_its_alignment_and_keeps_its_bytes() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 128] {
            for size in 1..600 {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a layout of non-zero size; each block is written
                // within its size, and freed once, with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} at {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let grown = resized(&a, p, align, size, size * 3 + 1);
                    let shrunk = resized(&a, grown, align, size * 3 + 1, size.div_ceil(2));
                    a.dealloc(
                        shrunk,
                        Layout::from_size_align(size.div_ceil(2), align).expect("layout"),
                    );

                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} at {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed {size}");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    /// Reallocates `p`, a block of `from` bytes filled with 0, 1, 2...,
    /// to `to` bytes; checks the new block's alignment and the bytes kept.
    ///
    /// # Safety
    /// `p` is a live block of `a` of `from` bytes at `align`.
    unsafe fn resized(a: &Mimalloc, p: *mut u8, align: usize, from: usize, to: usize) -> *mut u8 {
        let layout = Layout::from_size_align(from, align).expect("layout");
        // SAFETY: the caller's promise; only the bytes kept are read.
        unsafe {
            let q = a.realloc(p, layout, to);
            assert_eq!(q as usize % align, 0, "realloc {from} -> {to} at {align}");
            for i in 0..from.min(to) {
                assert_eq!(*q.add(i), i as u8, "byte {i} after {from} -> {to}");
            }
            q
        }
    }

    #[test]
    fn only_word_alignments_no_wider_than_the_size_take_the_plain_calls() {
        assert!(plain(1, 1));
        assert!(plain(8, 8));
        assert!(plain(8, 24));
        assert!(!plain(8, 4), "4 bytes aligned to 8");
        assert!(!plain(16, 32), "16-byte alignment");
        assert!(!plain(128, 256), "a cache-padded task");
    }
}
