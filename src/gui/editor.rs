//! The config editor: the node addresses (and, while no run is going, the
//! workers, workload and policy) as text fields, each validated as it is
//! typed with the error shown under it. Save is disabled while anything is
//! invalid and writes config.json atomically (a temporary file, then a
//! rename), changing only the fields the user changed: the rest of the
//! file, defaults left out included, stays as it was. A throttle slider is
//! not an edit of the file unless the user asks for it (Keep the sliders'
//! throttles). The same validation as the command line is used, so the
//! window accepts exactly the files `loadbal` accepts.

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
    /// The text as loaded or last saved: a field whose text differs is an
    /// edit, and only edits are written.
    saved: String,
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
    /// Throttles the user asked to keep (from the sliders), by role.
    throttles: [Option<f64>; 2],
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
                saved: text_of(&file, key),
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
            throttles: [None; 2],
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
            self.status = None;
            self.revalidate();
        }
    }

    /// Keeps a node's throttle (as its slider has it) at the next Save: the
    /// user asked for it (Keep the sliders' throttles).
    pub fn keep_throttle(&mut self, role: Role, throttle: f64) {
        if (self.base.node(role).throttle - throttle).abs() > f64::EPSILON {
            self.throttles[role_index(role)] = Some(throttle);
            self.status = None;
            self.revalidate();
        }
    }

    /// True when something differs from the file as loaded or saved.
    pub fn is_dirty(&self) -> bool {
        self.fields.iter().any(|f| f.text != f.saved) || self.throttles.iter().any(Option::is_some)
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
        for role in [Role::Master, Role::Slave] {
            if let Some(t) = self.throttles[role_index(role)] {
                file.node_mut(role).throttle = t;
            }
        }
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

    /// Writes the fields the user changed into the file, atomically; the
    /// rest of the file stays as it is (a file that is not there yet is
    /// written with the changed fields only).
    pub fn save(&mut self) -> Result<(), String> {
        let Some((file, _)) = &self.valid else {
            return Err("the config has errors; fix them before saving".to_owned());
        };
        let mut edits: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.text != f.saved)
            .map(|f| f.key)
            .collect();
        for (role, key) in [
            (Role::Master, "master.throttle"),
            (Role::Slave, "slave.throttle"),
        ] {
            if self.throttles[role_index(role)].is_some() {
                edits.push(key);
            }
        }
        let mut json = match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                format!(
                    "cannot save: {} is no longer valid JSON ({e}); fix it or move it away",
                    self.path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        for key in edits {
            set_key(&mut json, key, value_of(file, key))?;
        }
        let mut text = serde_json::to_string_pretty(&json)
            .map_err(|e| format!("cannot write the config as JSON: {e}"))?;
        text.push('\n');
        crate::files::write(&self.path, text.as_bytes())
            .map_err(|e| format!("cannot save {}: {e}", self.path.display()))?;
        self.base = file.clone();
        for f in &mut self.fields {
            f.saved.clone_from(&f.text);
        }
        self.throttles = [None; 2];
        Ok(())
    }

    /// Draws the editor. `running` locks the fields that only change before
    /// a run starts.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        running: bool,
        sliders: &[(Role, f64)],
    ) -> EditorCommand {
        let mut changed = false;
        // A field as wide as the panel (which the user can widen): a whole
        // IPv6 address with its port fits; its error goes under it.
        let width = ui.available_width().max(200.0);
        for f in &mut self.fields {
            let label = ui.label(f.label);
            let enabled = !(running && f.before_start_only);
            let edit = egui::TextEdit::singleline(&mut f.text).desired_width(width);
            let response = ui.add_enabled(enabled, edit).labelled_by(label.id);
            changed |= response.changed();
            if let Some(e) = &f.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            ui.add_space(4.0);
        }
        if changed {
            self.status = None;
            self.revalidate();
        }
        let differ: Vec<(Role, f64)> = sliders
            .iter()
            .copied()
            .filter(|&(role, t)| (self.base.node(role).throttle - t).abs() > f64::EPSILON)
            .filter(|&(role, t)| self.throttles[role_index(role)] != Some(t))
            .collect();
        if !differ.is_empty() {
            let text = differ
                .iter()
                .map(|(role, t)| format!("{role} {:.0} %", t * 100.0))
                .collect::<Vec<_>>()
                .join(", ");
            if ui
                .button(format!("Keep the sliders' throttles ({text})"))
                .on_hover_text(
                    "Save then writes them into the file; moving a slider alone does not",
                )
                .clicked()
            {
                for (role, t) in differ {
                    self.keep_throttle(role, t);
                }
            }
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
            } else if self.is_dirty() {
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

fn role_index(role: Role) -> usize {
    match role {
        Role::Master => 0,
        Role::Slave => 1,
    }
}

/// A key's value in `file`, as JSON; `None` removes the key (a blank
/// threshold: the policy's own).
fn value_of(file: &ConfigFile, key: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let w = &file.workload;
    Some(match key {
        "master.address" => json!(file.master.address),
        "slave.address" => json!(file.slave.address),
        "master.workers" => json!(file.master.workers),
        "slave.workers" => json!(file.slave.workers),
        "master.throttle" => json!(file.master.throttle),
        "slave.throttle" => json!(file.slave.throttle),
        "workload.jobs" => json!(w.jobs),
        "workload.elements_per_job" => json!(w.elements_per_job),
        "workload.iterations" => json!(w.iterations),
        "workload.initial" => json!(w.initial),
        "workload.addend" => json!(w.addend),
        "policy.transfer" => json!(file.policy.transfer),
        "policy.threshold" => json!(file.policy.threshold?),
        "policy.state_interval_ms" => json!(file.policy.state_interval_ms),
        _ => return None,
    })
}

/// Sets (or, with `None`, removes) the dotted `key` in a config's JSON,
/// making the section if the file has none.
fn set_key(
    json: &mut serde_json::Value,
    key: &str,
    value: Option<serde_json::Value>,
) -> Result<(), String> {
    let (section, field) = key.split_once('.').unwrap_or(("", key));
    let not_object = || format!("cannot save: \"{section}\" in the file is not an object");
    let root = json
        .as_object_mut()
        .ok_or("cannot save: the file's top level is not a JSON object")?;
    match value {
        Some(value) => {
            let section = root
                .entry(section)
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .ok_or_else(not_object)?;
            section.insert(field.to_owned(), value);
        }
        None => {
            if let Some(section) = root.get_mut(section).and_then(|s| s.as_object_mut()) {
                section.remove(field);
            }
        }
    }
    Ok(())
}
