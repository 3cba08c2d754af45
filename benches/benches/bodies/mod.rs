//! The error bodies the `envelope` bench and the `instructions` example decode: one typical body
//! per built-in format, as each vendor's documentation prints it.

use bytes::Bytes;
use http::StatusCode;

/// A typical IXON 401, padded with realistic whitespace to about 1 KB as the docs print it.
pub(crate) fn ixon_1kb() -> Bytes {
    let mut body = String::from(
        r#"{
    "type": "Error",
    "data": [
        {
            "message": "Invalid value",
            "propertyName": "Authorization"
        },
        {
            "message": "Required header",
            "propertyName": "Api-Company"
        },
        {
            "message": "Value is too short",
            "propertyName": "Api-Application"
        }
    ],
    "moreAfter": null,
    "status": "error"
}"#,
    );
    body.push_str(&" ".repeat(1024 - body.len()));
    Bytes::from(body)
}

/// A typical Telecom X 422 with three inner errors, padded to about 1 KB.
pub(crate) fn telecom_x_1kb() -> Bytes {
    let mut body = String::from(
        r#"{
  "error": {
    "code": "multiple",
    "status": 422,
    "inner": [
      { "message": "User not found", "code": "userId", "status": 404 },
      { "message": "Invalid street", "code": "address.street", "status": 422, "check": "format" },
      { "message": "Zip is missing", "code": "address.zip", "status": 404 }
    ]
  }
}"#,
    );
    body.push_str(&" ".repeat(1024 - body.len()));
    Bytes::from(body)
}

/// One typical error body of each built-in format, named, with its status.
pub(crate) fn bodies() -> Vec<(&'static str, StatusCode, Bytes)> {
    vec![
        ("ixon 401 (1 KB)", StatusCode::UNAUTHORIZED, ixon_1kb()),
        ("telecom x 422 (1 KB)", StatusCode::UNPROCESSABLE_ENTITY, telecom_x_1kb()),
        (
            "attraqt 404",
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"code": 5, "message": "Item not found", "details": []}"#),
        ),
        (
            "open2b in 200",
            StatusCode::OK,
            Bytes::from_static(br#"{"status":"error","error":{"field":"name","type":"Malformed","description":"Name is not syntactically correct"}}"#),
        ),
        (
            "problem+json 403",
            StatusCode::FORBIDDEN,
            Bytes::from_static(br#"{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc","status":403}"#),
        ),
        (
            "google 429 + RetryInfo",
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(br#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"30s"}]}}"#),
        ),
        (
            "stripe 402",
            StatusCode::PAYMENT_REQUIRED,
            Bytes::from_static(br#"{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined.","param":"card"}}"#),
        ),
        (
            "github 422",
            StatusCode::UNPROCESSABLE_ENTITY,
            Bytes::from_static(br#"{"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}],"documentation_url":"https://docs.github.com/rest"}"#),
        ),
        (
            "json:api 422",
            StatusCode::UNPROCESSABLE_ENTITY,
            Bytes::from_static(br#"{"errors":[{"status":"422","code":"invalid","source":{"pointer":"/data/attributes/firstName"},"title":"Invalid Attribute","detail":"First name must contain at least two characters."}]}"#),
        ),
    ]
}
