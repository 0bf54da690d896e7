//! Sentry glue. SKELETON: lands with the init work (issue 2).
