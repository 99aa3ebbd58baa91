//! Reading admin request bodies and queries into typed values, collecting one
//! message per bad field: a body over 2 MiB is a 413, malformed JSON a 400, everything
//! else a 422 with details.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::AdminError;
use crate::model::{AuthType, parse_canonical_uuid};
use crate::secret::SecretString;
use crate::store::FieldErrors;

/// A request body read whole (up to axum's default limit of 2 MiB), whose refusals
/// answer in the admin API's JSON error shape rather than axum's plain text.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AdminError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AdminError::PayloadTooLarge)
            }
            Err(_) => Err(AdminError::MalformedJson),
        }
    }
}

/// The fields of one JSON object body, taken one by one.
pub struct Fields {
    object: Map<String, Value>,
    errors: FieldErrors,
}

impl Fields {
    /// Parses `body`; fields outside `allowed` are "not allowed".
    pub fn parse(body: &[u8], allowed: &[&str]) -> Result<Self, AdminError> {
        Self::parse_with(body, allowed, "is not allowed")
    }

    /// Like `parse`, for updates: other fields "cannot be changed".
    pub fn parse_immutable(body: &[u8], allowed: &[&str]) -> Result<Self, AdminError> {
        Self::parse_with(body, allowed, "cannot be changed")
    }

    fn parse_with(body: &[u8], allowed: &[&str], unknown: &str) -> Result<Self, AdminError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| AdminError::MalformedJson)?;
        let Value::Object(object) = value else {
            let mut errors = FieldErrors::new();
            errors.insert("body".into(), vec!["must be a JSON object".into()]);
            return Err(AdminError::Invalid(errors));
        };
        let mut fields = Self {
            object,
            errors: FieldErrors::new(),
        };
        let extra: Vec<String> = fields
            .object
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in extra {
            fields.error(&key, unknown);
        }
        Ok(fields)
    }

    pub fn error(&mut self, field: &str, message: &str) {
        self.errors
            .entry(field.to_string())
            .or_default()
            .push(message.to_string());
    }

    /// 422 with every collected message, or nothing.
    pub fn finish(&mut self) -> Result<(), AdminError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(AdminError::Invalid(std::mem::take(&mut self.errors)))
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.object.remove(field).filter(|v| !v.is_null())
    }

    /// Any string, NUL included: for secrets, which are hashed and never stored as text.
    pub fn optional_secret(&mut self, field: &str) -> Option<String> {
        match self.take(field)? {
            Value::String(text) => Some(text),
            _ => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// A string that is stored or compared as Postgres text, which cannot hold NUL.
    pub fn optional_string(&mut self, field: &str) -> Option<String> {
        let text = self.optional_secret(field)?;
        if text.contains('\0') {
            self.error(field, "must not contain NUL characters");
            return None;
        }
        Some(text)
    }

    /// Records "can't be blank" when the field is absent or null.
    fn present(&mut self, field: &str) -> bool {
        let present = self.object.get(field).is_some_and(|v| !v.is_null());
        if !present {
            self.error(field, "can't be blank");
        }
        present
    }

    fn required_string(&mut self, field: &str) -> Option<String> {
        if !self.present(field) {
            return None;
        }
        self.optional_string(field)
    }

    /// A required string of `min..=max` characters.
    pub fn bounded_string(&mut self, field: &str, min: usize, max: usize) -> Option<String> {
        let text = self.required_string(field)?;
        self.check_length(field, text, min, max)
    }

    fn check_length(
        &mut self,
        field: &str,
        text: String,
        min: usize,
        max: usize,
    ) -> Option<String> {
        let length = text.chars().count();
        if length < min || length > max {
            self.error(field, &format!("must be {min} to {max} characters"));
            return None;
        }
        Some(text)
    }

    /// A method name: required, 1–255 characters, not only whitespace.
    pub fn name(&mut self, field: &str) -> Option<String> {
        let name = self.bounded_string(field, 1, 255)?;
        if name.trim().is_empty() {
            self.error(field, "can't be blank");
            return None;
        }
        Some(name)
    }

    /// A Basic username: required, 1–255 characters, no `:` (RFC 7617 splits the
    /// credential on the first one, so such a name could never match a request).
    pub fn username(&mut self, field: &str) -> Option<String> {
        let username = self.bounded_string(field, 1, 255)?;
        if username.contains(':') {
            self.error(field, "must not contain `:`");
            return None;
        }
        if username.chars().any(char::is_control) {
            self.error(field, "must not contain control characters");
            return None;
        }
        Some(username)
    }

    /// A password: required, 8–72 characters (Unicode scalar values).
    pub fn password(&mut self, field: &str) -> Option<SecretString> {
        if !self.present(field) {
            return None;
        }
        let text = self.optional_secret(field)?;
        self.check_length(field, text, 8, 72).map(SecretString::new)
    }

    /// A caller-supplied API key: 32–256 visible ASCII characters.
    pub fn api_key(&mut self, field: &str) -> Option<SecretString> {
        let key = self.optional_string(field)?;
        let visible = key.bytes().all(|b| b.is_ascii_graphic());
        if !(32..=256).contains(&key.len()) || !visible {
            self.error(field, "must be 32 to 256 visible ASCII characters");
            return None;
        }
        Some(SecretString::new(key))
    }

    pub fn auth_type(&mut self, field: &str) -> Option<AuthType> {
        let text = self.required_string(field)?;
        let parsed = AuthType::parse(&text);
        if parsed.is_none() {
            self.error(field, "must be basic or api");
        }
        parsed
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.take(field)? {
            Value::Bool(value) => Some(value),
            _ => {
                self.error(field, "must be true or false");
                None
            }
        }
    }

    /// Absent: `None`; `null`: `Some(None)`; a string: `Some(Some(..))`.
    pub fn nullable_string(&mut self, field: &str) -> Option<Option<String>> {
        match self.object.remove(field)? {
            Value::Null => Some(None),
            Value::String(text) => Some(Some(text)),
            _ => {
                self.error(field, "must be a string or null");
                None
            }
        }
    }

    pub fn optional_uuid(&mut self, field: &str) -> Option<Uuid> {
        let text = self.optional_string(field)?;
        let parsed = parse_canonical_uuid(&text);
        if parsed.is_none() {
            self.error(field, "must be a UUID");
        }
        parsed
    }

    pub fn required_uuid(&mut self, field: &str) -> Option<Uuid> {
        let text = self.required_string(field)?;
        let parsed = parse_canonical_uuid(&text);
        if parsed.is_none() {
            self.error(field, "must be a UUID");
        }
        parsed
    }

    pub fn required_uuid_list(&mut self, field: &str) -> Option<Vec<Uuid>> {
        let Some(Value::Array(items)) = self.take(field) else {
            self.error(field, "must be a list of UUIDs");
            return None;
        };
        let parsed: Option<Vec<Uuid>> = items
            .iter()
            .map(|item| item.as_str().and_then(parse_canonical_uuid))
            .collect();
        if parsed.is_none() {
            self.error(field, "must be a list of UUIDs");
        }
        parsed
    }
}

/// Query parameters, checked the same way.
#[derive(Default)]
pub struct QueryFields {
    errors: FieldErrors,
}

impl QueryFields {
    pub fn uuid(&mut self, params: &HashMap<String, String>, name: &str) -> Option<Uuid> {
        let text = params.get(name)?;
        let parsed = parse_canonical_uuid(text);
        if parsed.is_none() {
            self.errors
                .entry(name.into())
                .or_default()
                .push("must be a UUID".into());
        }
        parsed
    }

    /// Parameters outside `known` are "not allowed", as unknown body fields are.
    pub fn only(&mut self, params: &HashMap<String, String>, known: &[&str]) {
        for name in params.keys().filter(|name| !known.contains(&name.as_str())) {
            self.push(name, "is not allowed".into());
        }
    }

    /// A parameter that must be one of `allowed`.
    pub fn one_of(
        &mut self,
        params: &HashMap<String, String>,
        name: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let text = params.get(name)?;
        if !allowed.contains(&text.as_str()) {
            self.push(name, format!("must be one of: {}", allowed.join(", ")));
            return None;
        }
        Some(text.clone())
    }

    fn push(&mut self, name: &str, message: String) {
        self.errors.entry(name.into()).or_default().push(message);
    }

    pub fn integer(
        &mut self,
        params: &HashMap<String, String>,
        name: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let text = params.get(name)?;
        match text.parse::<i64>() {
            Ok(value) if (min..=max).contains(&value) => Some(value),
            _ => {
                let message = format!("must be an integer from {min} to {max}");
                self.errors.entry(name.into()).or_default().push(message);
                None
            }
        }
    }

    pub fn finish(&mut self) -> Result<(), AdminError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(AdminError::Invalid(std::mem::take(&mut self.errors)))
    }
}
