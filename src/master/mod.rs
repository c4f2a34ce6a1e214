//! placeholder: master
