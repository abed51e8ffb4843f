//! libvirt's RPC layer, server side: the message header and framing, the error payload,
//! the keepalive program and the per-connection loop. Generic over the programs served;
//! nothing here knows about node devices.
//!
//! - [`header`]: the wire format of one message.
//! - [`connection`]: a socket as a stream of frames (buffering, size limits, output).
//! - [`server`]: accepting clients and the per-connection loop (read a frame, dispatch
//!   it, write the reply; keepalive and events in between).
//! - `registry`: the clients of one [`Server`] and its limits, as the admin program sees
//!   them; `service`: the [`Service`] trait a program implements; `keepalive`: server
//!   pings and answers to the client's.
//! - [`identity`]: who a client is, from its socket or forwarded by a trusted client.

pub mod client;
pub mod connection;
pub mod error;
pub mod header;
pub mod identity;
mod keepalive;
mod registry;
pub mod server;
mod service;
pub mod socket;
mod stop;

pub use error::{ErrorCode, ErrorDomain, VirError};
pub use header::{Header, MessageType, Status};
pub use identity::{ClientIdentity, Identity};
pub use registry::{
    ClientInfo, ClientSnapshot, LimitError, Limits, Server, ThreadPoolInfo, TRANSPORT_UNIX,
};
pub use server::serve;
pub use service::{EventSender, Reply, Service};
