//! Virtual-time scenarios.
