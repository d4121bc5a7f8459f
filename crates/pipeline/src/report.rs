//! A report: the named numbers a run produces, in the order of nothing (a JSON object), so that
//! a front end can write them (summary.json) or return them (a Python dict).

use serde_json::{Map, Value, json};

/// Named results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    values: Map<String, Value>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records anything JSON.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.values.insert(key.to_string(), value.into());
    }

    /// Records a float; JSON has no NaN or infinity, so such a number is recorded as null.
    pub fn num(&mut self, key: &str, value: f64) {
        self.set(
            key,
            if value.is_finite() {
                json!(value)
            } else {
                Value::Null
            },
        );
    }

    /// Records a sampler's settings ([`diffuse_core::samplers::Fixed::describe`]).
    pub fn settings(
        &mut self,
        settings: Vec<(&'static str, diffuse_core::samplers::spec::Setting)>,
    ) {
        use diffuse_core::samplers::spec::Setting;
        for (key, value) in settings {
            match value {
                Setting::Count(c) => self.set(key, c),
                Setting::Number(v) => self.num(key, v),
                Setting::Name(s) => self.set(key, s),
                Setting::Levels(l) => self.set(key, l),
            }
        }
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: Report) {
        self.values.extend(other.values);
    }

    /// A value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The values as a JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.values
    }
}
