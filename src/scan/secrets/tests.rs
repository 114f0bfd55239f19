use super::*;

async fn kinds(text: &str) -> Vec<String> {
    crate::scan::reasons(&Secrets, text).await
}

const SAMPLES: &[(&str, &str)] = &[
    ("AWS access key", "key AKIAQ3EGRJ5ZTX4PLMNB here"),
    (
        "AWS secret key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYz8Q2LkPzKQ",
    ),
    ("Google API key", "AIzaSyD3x9Kq8vLm2Np4Qr7St1Uv5Wx0Yz3Ab6C"),
    (
        "Google API key",
        "key=AIzaSyD3x9Kq8vLm2Np4Qr7St1Uv5Wx0Yz3Ab6- next",
    ),
    ("GitHub token", "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R"),
    ("GitLab token", "glpat-Ab3dEf6hIj9kLm2nOp5q"),
    (
        "Slack token",
        "xoxb-12345678901-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    ("Stripe key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "Anthropic key",
        "sk-ant-api03-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv4Wx5Yz6Ab7Cd8Ef9Gh0Ij1KlAA",
    ),
    (
        "Hugging Face token",
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
    ),
    (
        "SendGrid key",
        "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",
    ),
    ("npm token", "npm_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2"),
    (
        "JSON Web Token",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    (
        "private key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c2\nabc\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "database URL with password",
        "DATABASE_URL=postgres://app:S3cr3tPassw0rd@db.internal:5432/prod",
    ),
    ("generic secret", "api_key = \"q8Zr2LmX9vT4bN7cK1pW5sY3\""),
];

#[tokio::test]
async fn finds_each_provider_format() {
    for (what, text) in SAMPLES {
        assert_eq!(kinds(text).await, vec![what.to_string()], "{text}");
    }
}

#[tokio::test]
async fn redaction_covers_only_the_secret_with_a_typed_placeholder() {
    let text = "DATABASE_URL=postgres://app:S3cr3tPassw0rd@db.internal:5432/prod";
    let m = &Secrets.scan(text).await.expect("scan")[0];
    assert_eq!(&text[m.span.clone().expect("span")], "S3cr3tPassw0rd");
    assert_eq!(m.placeholder, "[REDACTED_DB_PASSWORD]");
    let aws = &Secrets.scan("id AKIAQ3EGRJ5ZTX4PLMNB").await.expect("scan")[0];
    assert_eq!(aws.placeholder, "[REDACTED_AWS_KEY]");
}

#[tokio::test]
async fn look_alikes_and_placeholders_pass() {
    for text in [
        "api_key = \"YOUR_API_KEY_HERE\"",
        "password = \"hunter2\"",
        "password = \"aaaaaaaaaaaaaaaa\"",
        "the token is in the vault, see docs",
        "commit 3f2a9c1e8b7d4e6fa5c41d2e3f4a5b6c7d8e9f0a fixed it",
        "request 3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c",
        "postgres://localhost:5432/app",
        "ask about Hugging Face hf_transfer",
        "hf_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1W", // digits: not the token format
    ] {
        assert!(
            kinds(text).await.is_empty(),
            "{text}: {:?}",
            kinds(text).await
        );
    }
}

#[test]
fn entropy_measures_randomness() {
    assert!(entropy("aaaaaaaa") < 0.1);
    assert!(entropy("q8Zr2LmX9vT4bN7cK1pW5sY3") > 4.0);
}
