//! libvirt's RPC layer, server side: the message header and framing, the error payload,
//! the keepalive program and the per-connection loop. Generic over the programs served;
//! nothing here knows about node devices.

pub mod client;
pub mod error;
pub mod header;
pub mod server;

pub use error::{ErrorCode, ErrorDomain, VirError};
pub use header::{Header, MessageType, Status};
pub use server::{
    serve, ClientInfo, ClientSnapshot, EventSender, LimitError, Limits, Reply, Server, Service,
    ThreadPoolInfo, TRANSPORT_UNIX,
};
