//! placeholder: wsgi
