//! One module per subcommand.

pub mod checkpoint;
pub mod demo;
pub mod keygen;
pub mod prove;
pub mod query;
pub mod retention;
pub mod seal;
mod sealing;
pub mod verify;
