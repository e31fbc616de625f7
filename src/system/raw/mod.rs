//! The kernel interfaces that Rust cannot call safely: this module and its children hold
//! every `unsafe` in steward, each call with the reason it is sound beside it. Everything
//! else reaches them through the safe functions here.

pub mod block;
pub mod pages;
