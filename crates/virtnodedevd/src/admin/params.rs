//! Typed parameters as the admin procedures read and answer them.

use protocol::remote::{TypedParam, TypedValue};

use super::error::AdminError;

pub(super) fn uint(name: &str, v: u32) -> TypedParam {
    TypedParam {
        field: name.into(),
        value: TypedValue::UInt(v),
    }
}

/// The reply of the procedures that answer with a typed-parameter list.
pub(super) fn encode(list: Vec<TypedParam>) -> Vec<u8> {
    xdr::to_bytes(&list)
}

fn type_name(v: &TypedValue) -> &'static str {
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

/// `virTypedParamsValidate` with UINT keys: parameters and keys are both sorted by name
/// and walked together, so which complaint comes first depends on that order, as in
/// libvirt.
pub(super) fn validate(params: &[TypedParam], keys: &[&str]) -> Result<(), AdminError> {
    let mut sorted: Vec<&TypedParam> = params.iter().collect();
    sorted.sort_by(|a, b| a.field.as_bytes().cmp(b.field.as_bytes()));
    let mut keys: Vec<&str> = keys.to_vec();
    keys.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let mut last: Option<&str> = None;
    while i < sorted.len() && j < keys.len() {
        if sorted[i].field != keys[j] {
            j += 1;
            continue;
        }
        if last == Some(sorted[i].field.as_str()) {
            return Err(AdminError::ParamRepeated(sorted[i].field.clone()));
        }
        if !matches!(sorted[i].value, TypedValue::UInt(_)) {
            return Err(AdminError::ParamType {
                field: sorted[i].field.clone(),
                found: type_name(&sorted[i].value),
            });
        }
        last = Some(sorted[i].field.as_str());
        i += 1;
    }
    if j == keys.len() && i != sorted.len() {
        return Err(AdminError::ParamUnsupported(sorted[i].field.clone()));
    }
    Ok(())
}

pub(super) fn get_uint(params: &[TypedParam], name: &str) -> Option<u32> {
    params
        .iter()
        .find_map(|p| match (&p.value, p.field == name) {
            (TypedValue::UInt(v), true) => Some(*v),
            _ => None,
        })
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

    const KEYS: [&str; 3] = ["minWorkers", "maxWorkers", "prioWorkers"];

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
