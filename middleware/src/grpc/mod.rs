//! gRPC layers. SKELETON: lands with the layer work (issue 2).
