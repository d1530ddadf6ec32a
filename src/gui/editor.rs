//! The config editor: the node addresses (and, while no run is going, the
//! workers, workload and policy) as text fields, each validated as it is
//! typed with the error shown beside it. Save is disabled while anything is
//! invalid and writes config.json atomically (a temporary file, then a
//! rename). The same validation as the command line is used, so the window
//! accepts exactly the files `loadbal` accepts.

use std::path::PathBuf;

use eframe::egui;

use crate::config::{Config, ConfigError, ConfigFile, Role};

/// One editable field.
#[derive(Debug, Clone)]
struct Field {
    /// The dotted path, as in error messages (`slave.address`).
    key: &'static str,
    /// What the user sees.
    label: &'static str,
    /// Editable only before a run starts.
    before_start_only: bool,
    text: String,
    error: Option<String>,
}

const KEYS: &[(&str, &str, bool)] = &[
    ("master.address", "Master address", false),
    ("slave.address", "Slave address", false),
    ("master.workers", "Master workers", true),
    ("slave.workers", "Slave workers", true),
    ("workload.jobs", "Jobs", true),
    ("workload.elements_per_job", "Elements per job", true),
    ("workload.iterations", "Iterations", true),
    ("workload.initial", "Initial value", true),
    ("workload.addend", "Addend", true),
    ("policy.transfer", "Policy", true),
    ("policy.threshold", "Threshold (blank: the policy's)", true),
    ("policy.state_interval_ms", "State interval (ms)", true),
];

/// What the editor asks the window to do.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditorCommand {
    /// Nothing.
    None,
    /// The config was saved.
    Saved,
}

/// The config editor's state.
pub struct ConfigEditor {
    path: PathBuf,
    /// The file as loaded or last saved; fields not edited here come from it.
    base: ConfigFile,
    fields: Vec<Field>,
    /// The edited config, when every field is valid.
    valid: Option<(ConfigFile, Config)>,
    /// An error that names no single field.
    general_error: Option<String>,
    status: Option<String>,
    dirty: bool,
    /// The machine, probed once: a keystroke checks against it without
    /// asking the system again.
    machine: crate::config::Machine,
}

impl ConfigEditor {
    /// An editor for `file`, saving to `path`.
    pub fn new(path: PathBuf, file: ConfigFile) -> Self {
        let fields = KEYS
            .iter()
            .map(|&(key, label, before_start_only)| Field {
                key,
                label,
                before_start_only,
                text: text_of(&file, key),
                error: None,
            })
            .collect();
        let mut editor = ConfigEditor {
            path,
            base: file,
            fields,
            valid: None,
            general_error: None,
            status: None,
            dirty: false,
            machine: crate::config::Machine::probe(),
        };
        editor.revalidate();
        editor
    }

    /// The edited config, if every field is valid.
    pub fn config(&self) -> Option<&Config> {
        self.valid.as_ref().map(|(_, c)| c)
    }

    /// True when nothing is invalid.
    pub fn is_valid(&self) -> bool {
        self.valid.is_some()
    }

    /// The error shown beside a field, if any.
    pub fn error(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| f.error.as_deref())
    }

    /// Sets a field's text as if typed (used by tests and the window).
    pub fn set_text(&mut self, key: &str, text: &str) {
        if let Some(f) = self.fields.iter_mut().find(|f| f.key == key) {
            f.text = text.to_owned();
            self.dirty = true;
            self.status = None;
            self.revalidate();
        }
    }

    /// Records a throttle set with a node's slider, so Save keeps it.
    pub fn set_throttle(&mut self, role: Role, throttle: f64) {
        self.base.node_mut(role).throttle = throttle;
        self.dirty = true;
        self.revalidate();
    }

    /// The path Save writes.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Builds the file from the fields and validates it, putting each error
    /// beside the field it names.
    fn revalidate(&mut self) {
        self.general_error = None;
        let mut file = self.base.clone();
        let mut ok = true;
        for f in &mut self.fields {
            f.error = apply(&mut file, f.key, f.text.trim()).err();
            ok &= f.error.is_none();
        }
        self.valid = None;
        if !ok {
            return;
        }
        match file.validate_on(&self.machine) {
            Ok(config) => self.valid = Some((file, config)),
            Err(ConfigError::Invalid { field, message }) => {
                match self.fields.iter_mut().find(|f| f.key == field) {
                    Some(f) => f.error = Some(message),
                    None => {
                        // "workload" (the product of two fields) and the like.
                        let f = self
                            .fields
                            .iter_mut()
                            .find(|f| f.key.starts_with(&format!("{field}.")));
                        match f {
                            Some(f) => f.error = Some(format!("{field}: {message}")),
                            None => self.general_error = Some(format!("{field}: {message}")),
                        }
                    }
                }
            }
            Err(other) => self.general_error = Some(other.to_string()),
        }
    }

    /// Writes the valid config atomically.
    pub fn save(&mut self) -> Result<(), String> {
        let Some((file, _)) = &self.valid else {
            return Err("the config has errors; fix them before saving".to_owned());
        };
        crate::files::write(&self.path, file.to_json().as_bytes())
            .map_err(|e| format!("cannot save {}: {e}", self.path.display()))?;
        self.base = file.clone();
        self.dirty = false;
        Ok(())
    }

    /// Draws the editor. `running` locks the fields that only change before
    /// a run starts.
    pub fn show(&mut self, ui: &mut egui::Ui, running: bool) -> EditorCommand {
        let mut changed = false;
        egui::Grid::new("config-grid")
            .num_columns(3)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                for f in &mut self.fields {
                    let label = ui.label(f.label);
                    let enabled = !(running && f.before_start_only);
                    let edit = egui::TextEdit::singleline(&mut f.text).desired_width(170.0);
                    let response = ui.add_enabled(enabled, edit).labelled_by(label.id);
                    changed |= response.changed();
                    match &f.error {
                        Some(e) => ui.colored_label(ui.visuals().error_fg_color, e),
                        None => ui.label(""),
                    };
                    ui.end_row();
                }
            });
        if changed {
            self.dirty = true;
            self.status = None;
            self.revalidate();
        }
        if let Some(e) = &self.general_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let mut command = EditorCommand::None;
        ui.horizontal(|ui| {
            let can_save = self.valid.is_some();
            let save = ui.add_enabled(can_save, egui::Button::new("Save"));
            if save.clicked() {
                self.status = Some(match self.save() {
                    Ok(()) => {
                        command = EditorCommand::Saved;
                        format!(
                            "Saved {}. Address changes take effect when a node is next started.",
                            self.path.display()
                        )
                    }
                    Err(e) => e,
                });
            }
            if let Some(status) = &self.status {
                ui.label(status);
            } else if self.dirty {
                ui.label(format!("Unsaved changes to {}", self.path.display()));
            }
        });
        command
    }
}

fn text_of(file: &ConfigFile, key: &str) -> String {
    let w = &file.workload;
    match key {
        "master.address" => file
            .master
            .address
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_MASTER_ADDRESS.to_owned()),
        "slave.address" => file
            .slave
            .address
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_SLAVE_ADDRESS.to_owned()),
        "master.workers" => file.master.workers.to_string(),
        "slave.workers" => file.slave.workers.to_string(),
        "workload.jobs" => w.jobs.to_string(),
        "workload.elements_per_job" => w.elements_per_job.to_string(),
        "workload.iterations" => w.iterations.to_string(),
        "workload.initial" => w.initial.to_string(),
        "workload.addend" => w.addend.to_string(),
        "policy.transfer" => file.policy.transfer.clone(),
        "policy.threshold" => file
            .policy
            .threshold
            .map_or_else(String::new, |t| t.to_string()),
        "policy.state_interval_ms" => file.policy.state_interval_ms.to_string(),
        _ => String::new(),
    }
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("\"{text}\" is not {what}"))
}

/// Puts one field's text into the file, or says why it cannot.
fn apply(file: &mut ConfigFile, key: &str, text: &str) -> Result<(), String> {
    let whole = "a whole number";
    match key {
        "master.address" | "slave.address" => {
            crate::config::resolve_address(key, text).map_err(|e| match e {
                ConfigError::Invalid { message, .. } => message,
                other => other.to_string(),
            })?;
            let node = if key == "master.address" {
                &mut file.master
            } else {
                &mut file.slave
            };
            node.address = Some(text.to_owned());
        }
        "master.workers" => file.master.workers = number(text, whole)?,
        "slave.workers" => file.slave.workers = number(text, whole)?,
        "workload.jobs" => file.workload.jobs = number(text, whole)?,
        "workload.elements_per_job" => file.workload.elements_per_job = number(text, whole)?,
        "workload.iterations" => file.workload.iterations = number(text, whole)?,
        "workload.initial" => file.workload.initial = number(text, "a number")?,
        "workload.addend" => file.workload.addend = number(text, "a number")?,
        "policy.transfer" => {
            let name = text.trim();
            if !crate::policy::NAMES.contains(&name) {
                return Err(format!(
                    "\"{name}\" is not a policy: {}",
                    crate::policy::NAMES.join(", ")
                ));
            }
            name.clone_into(&mut file.policy.transfer);
        }
        "policy.threshold" if text.trim().is_empty() => file.policy.threshold = None,
        "policy.threshold" => file.policy.threshold = Some(number(text, whole)?),
        "policy.state_interval_ms" => file.policy.state_interval_ms = number(text, whole)?,
        _ => {}
    }
    Ok(())
}
