//! iikoServer simulator (to be written).
