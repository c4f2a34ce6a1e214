//! placeholder: worker
