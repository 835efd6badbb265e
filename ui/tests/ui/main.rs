//! The web interface's tests, all in one test binary (each separate binary linked libp2p again:
//! most of the build time of `cargo test`): `http` over plain HTTP, `browser` in headless
//! Chromium.
//!
//! Run one module: `cargo test -p lookout-ui --test ui http::`. Add one: put `NAME.rs` beside
//! this file and add `mod NAME;` below (see docs/TESTING.md).

mod browser;
mod http;
