//! Typed parameters as the admin procedures read and answer them.

use protocol::remote::{TypedParam, TypedValue};

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

pub(super) fn get_uint(params: &[TypedParam], name: &str) -> Option<u32> {
    params
        .iter()
        .find_map(|p| match (&p.value, p.field == name) {
            (TypedValue::UInt(v), true) => Some(*v),
            _ => None,
        })
}
