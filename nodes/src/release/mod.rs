//! Scheduled releases on this node: the clock that votes when a release's moment has come
//! on this node's clock ([`clock`]), and pre-positioning ([`preposition`]: holding a
//! release's content before it opens, and telling the catalog so). The gate every request
//! passes is `tessera_license::gate`.

pub mod clock;
pub mod preposition;
