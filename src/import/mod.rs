//! The air-gapped side: replaying a bundle into a registry (`push`) or into the Docker
//! engine (`load`). Both start from [`crate::bundle::graph::read_graph`], which reads
//! each image's manifests back out of the bundle and verifies them.

pub mod load;
pub mod push;
