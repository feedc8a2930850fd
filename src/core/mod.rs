//! The sans-IO core: pure decisions from observations and records. Nothing
//! in here touches the network, the disk or the clock.

pub mod announce;
pub mod assess;
pub mod balancer;
pub mod cycle;
pub mod experiment;
pub mod fleet;
pub mod gate;
pub mod holder;
pub mod ifaddr;
pub mod notify;
pub mod op;
pub mod overlap;
pub mod position;
pub mod preflight;
pub mod printable;
pub mod quote;
pub mod ramp;
pub mod restore;
pub mod template;
pub mod watch;
pub mod window;
