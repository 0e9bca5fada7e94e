//! iikoCloud simulator (to be written).
