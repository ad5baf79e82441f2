//! The truck-model catalogue (design contract C3): maintenance plans, fault
//! catalogue, spare parts and body-controller register maps, loaded from a
//! directory of TOML files (`models/` by default, `--models DIR`).
//!
//! The files are reviewed as diffs by people who know trucks, not Rust: a
//! file that does not validate is refused as a whole, with its path, the
//! line to fix and what to do (`models/sweeper-s8.toml:42: task
//! "engine-oil" has no interval; …`). `models/README.md` documents the
//! schema.

mod error;
mod file;
mod model;
mod part;
mod validate;
mod warranty;

#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use fleetcare_ingest::j1939::{Fmi, Spn};

pub use error::{CatalogError, Location, Problem, Result};
pub use fleetcare_ingest::ids::{InvalidId, MAX_ID_LEN, ModelId, PartId, TaskId};
pub use model::{
    ConditionEntry, DEFAULT_DUE_SOON_PERCENT, Direction, Duty, FaultEntry, Interval, IntervalMeter,
    MaintenanceTask, PartQty, Severity, TruckKind, TruckModel, default_due_soon,
};
pub use part::{DEFAULT_SAFETY_STOCK_WEEKS, Part};
pub use warranty::{
    Component, ComponentCover, Cover, Limits, Warranty, WarrantyBasis, WarrantyDecision,
    WarrantyFacts, WarrantyStatus,
};

use file::Source;

/// The file of spare parts, beside one file per truck model.
pub const PARTS_FILE: &str = "parts.toml";

/// Every truck model and spare part, validated and cross-checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    models: BTreeMap<ModelId, TruckModel>,
    parts: BTreeMap<PartId, Part>,
}

impl Catalog {
    /// Loads `dir/parts.toml` and every other `dir/*.toml` as one truck model
    /// each. Subdirectories, other extensions and hidden files (editor
    /// backups) are ignored; files are read in name order, so that of two
    /// files defining the same model the later name is the one refused.
    pub fn load(dir: &Path) -> Result<Self> {
        let parts = validate::parts(&Source::read(&dir.join(PARTS_FILE))?)?;
        let mut models = BTreeMap::new();
        let mut defined_in: HashMap<ModelId, PathBuf> = HashMap::new();
        for path in model_files(dir)? {
            let model = validate::model(&Source::read(&path)?, &parts, &defined_in)?;
            defined_in.insert(model.id.clone(), path);
            models.insert(model.id.clone(), model);
        }
        if models.is_empty() {
            return Err(CatalogError::NoModels {
                dir: dir.to_path_buf(),
            });
        }
        Ok(Self { models, parts })
    }

    /// The model with this id (a [`ModelId`] or a `&str`).
    pub fn model<Q>(&self, id: &Q) -> Option<&TruckModel>
    where
        ModelId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.models.get(id)
    }

    /// Every model, in id order.
    pub fn models(&self) -> impl Iterator<Item = &TruckModel> {
        self.models.values()
    }

    /// What the catalogue says about a fault code on a model; `None` for an
    /// unknown model or a code the model's catalogue does not list.
    pub fn fault<Q>(&self, model: &Q, spn: Spn, fmi: Fmi) -> Option<&FaultEntry>
    where
        ModelId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.model(model)?.fault(spn, fmi)
    }

    /// The part with this id (a [`PartId`] or a `&str`).
    pub fn part<Q>(&self, id: &Q) -> Option<&Part>
    where
        PartId: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.parts.get(id)
    }

    /// Every part, in id order.
    pub fn parts(&self) -> impl Iterator<Item = &Part> {
        self.parts.values()
    }
}

/// The model files of a catalogue directory, in name order.
fn model_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_error = |source| CatalogError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_model = name.ends_with(".toml") && name != PARTS_FILE && !name.starts_with('.');
        if is_model && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
