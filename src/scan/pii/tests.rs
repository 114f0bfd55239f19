use super::*;

async fn found(text: &str) -> Vec<(String, String)> {
    let pii = Config::default().build().expect("config");
    let mut out: Vec<(String, String)> = pii
        .scan(text)
        .await
        .expect("scan")
        .into_iter()
        .map(|m| (m.placeholder, text[m.span.expect("span")].to_string()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn finds_each_entity() {
    for (text, tag, value) in [
        (
            "mail jane.doe+x@mail.example.co.uk now",
            "[EMAIL_#]",
            "jane.doe+x@mail.example.co.uk",
        ),
        (
            "card 4111 1111 1111 1111 please",
            "[CREDIT_CARD_#]",
            "4111 1111 1111 1111",
        ),
        (
            "amex 378282246310005.",
            "[CREDIT_CARD_#]",
            "378282246310005",
        ),
        (
            "iban GB82WEST12345698765432 ok",
            "[IBAN_#]",
            "GB82WEST12345698765432",
        ),
        (
            "iban DE89 3704 0044 0532 0130 00 ok",
            "[IBAN_#]",
            "DE89 3704 0044 0532 0130 00",
        ),
        ("ssn 123-45-6789 on file", "[SSN_#]", "123-45-6789"),
        ("call (555) 010-4477 today", "[PHONE_#]", "(555) 010-4477"),
        ("call +44 20 7946 0958", "[PHONE_#]", "+44 20 7946 0958"),
        ("ruf an: +49(0)30 901820", "[PHONE_#]", "+49(0)30 901820"),
        ("tel 01 23 45 67 89", "[PHONE_#]", "01 23 45 67 89"),
        ("host 192.168.10.4 down", "[IP_ADDRESS_#]", "192.168.10.4"),
        (
            "v6 2001:db8::8a2e:370:7334 up",
            "[IP_ADDRESS_#]",
            "2001:db8::8a2e:370:7334",
        ),
    ] {
        assert_eq!(
            found(text).await,
            vec![(tag.to_string(), value.to_string())],
            "{text}"
        );
    }
}

#[tokio::test]
async fn invalid_numbers_and_ordinary_text_pass() {
    for text in [
        "card 4111 1111 1111 1112",    // fails Luhn
        "iban GB82WEST12345698765433", // fails mod 97
        "ssn 666-45-6789 and 123-00-6789 and 900-12-3456",
        "the meeting is on 2024-05-17 at 10:30",
        "version 1.2.3 of the tool, 42 items, 1999 dollars",
        "order number 12345",
        "time 12:30:45",
    ] {
        assert!(
            found(text).await.is_empty(),
            "{text}: {:?}",
            found(text).await
        );
    }
}

#[tokio::test]
async fn entity_lists_limit_what_is_found() {
    let only_email = Config {
        entities: vec![Entity::Email],
        ..Config::default()
    }
    .build()
    .expect("config");
    let m = only_email
        .scan("a@b.io and 123-45-6789")
        .await
        .expect("scan");
    assert_eq!(m.len(), 1);
    assert!(
        Config {
            entities: vec![],
            ..Config::default()
        }
        .build()
        .is_err()
    );
}

#[test]
fn checksums() {
    assert!(luhn(&digits("79927398713")));
    assert!(!luhn(&digits("79927398710")));
    assert!(iban_valid("FR1420041010050500013M02606"));
    assert!(!iban_valid("FR1420041010050500013M02607"));
}

#[tokio::test]
async fn overlapping_entities_keep_the_first_found_and_every_disjoint_one() {
    // An IP-looking run inside an e-mail address belongs to the e-mail (e-mail
    // is matched first); the separate IP and card numbers are kept.
    let text = "write to ops@10.0.0.1.example.com, ping 192.168.1.20, card 4111 1111 1111 1111";
    let got = found(text).await;
    let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
    assert!(values.contains(&"ops@10.0.0.1.example.com"), "{got:?}");
    assert!(values.contains(&"192.168.1.20"), "{got:?}");
    assert!(values.contains(&"4111 1111 1111 1111"), "{got:?}");
    assert!(!values.contains(&"10.0.0.1"), "{got:?}");
}

#[tokio::test]
async fn many_matches_are_all_found() {
    // 20,000 addresses: each kept exactly once (the overlap check is a
    // lookup, so this is quick; before it compared each with all earlier).
    let text = "a@b.co ".repeat(20_000);
    let pii = Config::default().build().expect("config");
    let found = pii.scan(&text).await.expect("scan");
    assert_eq!(found.len(), 20_000);
    let mut spans: Vec<_> = found.iter().filter_map(|m| m.span.clone()).collect();
    spans.sort_by_key(|s| s.start);
    assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
}
