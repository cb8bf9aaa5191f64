//! JSON Schemas of the events (being written).
