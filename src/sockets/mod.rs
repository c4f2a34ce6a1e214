//! placeholder: sockets
