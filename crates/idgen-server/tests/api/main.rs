//! Black-box tests of the real server on 127.0.0.1:0.
