//! Typed parameter lists as libvirt checks them (`virTypedParamsValidate`), for the admin
//! procedures' settings and CONNECT_SET_IDENTITY's identity.

use protocol::remote::{TypedParam, TypedValue};
use protocol::{ErrorCode, ErrorDomain, VirError};

/// A typed parameter's type, by libvirt's name for it.
pub fn type_name(v: &TypedValue) -> &'static str {
    match v {
        TypedValue::Int(_) => "int",
        TypedValue::UInt(_) => "uint",
        TypedValue::LLong(_) => "llong",
        TypedValue::ULLong(_) => "ullong",
        TypedValue::Double(_) => "double",
        TypedValue::Boolean(_) => "boolean",
        TypedValue::String(_) => "string",
    }
}

/// What `virTypedParamsValidate` refuses (reported in no domain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// VIR_ERR_INVALID_ARG.
    #[error("parameter '{0}' occurs multiple times")]
    Repeated(String),
    /// VIR_ERR_INVALID_ARG.
    #[error("invalid type '{found}' for parameter '{field}', expected '{expected}'")]
    Type {
        field: String,
        found: &'static str,
        expected: &'static str,
    },
    /// VIR_ERR_ARGUMENT_UNSUPPORTED.
    #[error("parameter '{0}' not supported")]
    Unsupported(String),
}

impl ParamError {
    pub fn to_vir_error(&self) -> VirError {
        let code = match self {
            Self::Repeated(_) | Self::Type { .. } => ErrorCode::InvalidArg,
            Self::Unsupported(_) => ErrorCode::ArgumentUnsupported,
        };
        VirError::new(code, ErrorDomain::None, self.to_string())
    }
}

impl From<ParamError> for VirError {
    fn from(e: ParamError) -> Self {
        e.to_vir_error()
    }
}

/// `virTypedParamsValidate`: each parameter one of `keys` (name and type name), none
/// twice. Parameters and keys are both sorted by name and walked together, so which
/// complaint comes first depends on that order, as in libvirt.
pub fn validate(params: &[TypedParam], keys: &[(&str, &'static str)]) -> Result<(), ParamError> {
    let mut sorted: Vec<&TypedParam> = params.iter().collect();
    sorted.sort_by(|a, b| a.field.as_bytes().cmp(b.field.as_bytes()));
    let mut keys: Vec<(&str, &'static str)> = keys.to_vec();
    keys.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let mut last: Option<&str> = None;
    while i < sorted.len() && j < keys.len() {
        let (key, expected) = keys[j];
        if sorted[i].field != key {
            j += 1;
            continue;
        }
        if last == Some(sorted[i].field.as_str()) {
            return Err(ParamError::Repeated(sorted[i].field.clone()));
        }
        let found = type_name(&sorted[i].value);
        if found != expected {
            return Err(ParamError::Type {
                field: sorted[i].field.clone(),
                found,
                expected,
            });
        }
        last = Some(sorted[i].field.as_str());
        i += 1;
    }
    if j == keys.len() && i != sorted.len() {
        return Err(ParamError::Unsupported(sorted[i].field.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, v: TypedValue) -> TypedParam {
        TypedParam {
            field: name.into(),
            value: v,
        }
    }

    const KEYS: [(&str, &str); 3] = [
        ("minWorkers", "uint"),
        ("maxWorkers", "uint"),
        ("prioWorkers", "uint"),
    ];

    #[test]
    fn validation_follows_virtypedparamsvalidate() {
        assert!(validate(&[p("maxWorkers", TypedValue::UInt(3))], &KEYS).is_ok());
        let e = validate(&[p("foo", TypedValue::UInt(3))], &KEYS)
            .unwrap_err()
            .to_vir_error();
        assert_eq!(
            (e.code, e.domain, e.message.as_str()),
            (74, 0, "argument unsupported: parameter 'foo' not supported")
        );
        let e = validate(&[p("minWorkers", TypedValue::Int(3))], &KEYS)
            .unwrap_err()
            .to_vir_error();
        assert_eq!(
            e.message,
            "invalid argument: invalid type 'int' for parameter 'minWorkers', expected 'uint'"
        );
        let e = validate(
            &[
                p("minWorkers", TypedValue::UInt(3)),
                p("minWorkers", TypedValue::UInt(4)),
            ],
            &KEYS,
        )
        .unwrap_err()
        .to_vir_error();
        assert_eq!(
            e.message,
            "invalid argument: parameter 'minWorkers' occurs multiple times"
        );
    }
}
