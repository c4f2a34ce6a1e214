//! placeholder: process
