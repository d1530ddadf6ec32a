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
    /// The policy the threshold's text is in the unit of.
    policy: String,
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
            policy: String::new(),
        };
        editor.policy = editor.text("policy.transfer").to_owned();
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
            self.follow_policy();
            self.revalidate();
        }
    }

    /// A field's text as it stands.
    pub fn text(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map_or("", |f| f.text.as_str())
    }

    /// When the policy becomes one whose threshold counts in another unit
    /// (jobs or milliseconds), a threshold typed for the old one means
    /// something else: it is cleared (the new policy's own), and the
    /// status line says so.
    fn follow_policy(&mut self) {
        let policy = self.text("policy.transfer").trim().to_owned();
        if !crate::policy::NAMES.contains(&policy.as_str()) || policy == self.policy {
            return;
        }
        let old = std::mem::replace(&mut self.policy, policy.clone());
        let (was, now) = (
            crate::policy::threshold_unit(&old),
            crate::policy::threshold_unit(&policy),
        );
        if was == now || self.text("policy.threshold").trim().is_empty() {
            return;
        }
        if let Some(f) = self.fields.iter_mut().find(|f| f.key == "policy.threshold") {
            f.text.clear();
        }
        self.status = Some(format!(
            "Threshold cleared: {policy} counts it in {now}, {old} in {was}; blank is \
             {policy}'s own ({} {now})",
            crate::policy::default_threshold(&policy)
        ));
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
        let old = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}\n".to_owned(),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let edits: Vec<(&str, Option<serde_json::Value>)> =
            edits.into_iter().map(|k| (k, value_of(file, k))).collect();
        let text = edit_json(&old, &edits).map_err(|e| {
            format!(
                "cannot save: {} {e}; fix it or move it away",
                self.path.display()
            )
        })?;
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
            self.follow_policy();
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

/// `text` (a config file) with each dotted key of `edits` set to its
/// value, or removed for `None`, and nothing else changed: every other
/// byte, spacing and order included, stays as written (a section the file
/// lacks is added at its end). Ends in one newline.
pub fn edit_json(
    text: &str,
    edits: &[(&str, Option<serde_json::Value>)],
) -> Result<String, String> {
    use jsonc_parser::cst::CstRootNode;
    let bom = text.starts_with('\u{feff}');
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = CstRootNode::parse(body, &jsonc_parser::ParseOptions::default())
        .map_err(|e| format!("is no longer valid JSON ({e})"))?;
    let top = root
        .object_value()
        .ok_or("has no JSON object at its top level")?;
    for (key, value) in edits {
        let (section, field) = key.split_once('.').unwrap_or(("", key));
        match value {
            Some(value) => {
                let object = top
                    .object_value_or_create(section)
                    .ok_or_else(|| format!("has a \"{section}\" that is not an object"))?;
                match object.get(field) {
                    Some(prop) => prop.set_value(cst_value(value)),
                    None => {
                        object.append(field, cst_value(value));
                    }
                }
            }
            None => {
                if let Some(prop) = top.object_value(section).and_then(|o| o.get(field)) {
                    prop.remove();
                }
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    if bom {
        out.push('\u{feff}');
    }
    out.push_str(root.to_string().trim_end_matches(['\n', '\r']));
    out.push('\n');
    Ok(out)
}

/// A JSON value as the CST editor takes it (numbers as serde_json writes
/// them, so a value reads back the same).
fn cst_value(value: &serde_json::Value) -> jsonc_parser::cst::CstInputValue {
    use jsonc_parser::cst::CstInputValue;
    match value {
        serde_json::Value::Null => CstInputValue::Null,
        serde_json::Value::Bool(b) => CstInputValue::Bool(*b),
        serde_json::Value::Number(n) => CstInputValue::Number(n.to_string()),
        serde_json::Value::String(s) => CstInputValue::String(s.clone()),
        serde_json::Value::Array(a) => CstInputValue::Array(a.iter().map(cst_value).collect()),
        serde_json::Value::Object(o) => {
            CstInputValue::Object(o.iter().map(|(k, v)| (k.clone(), cst_value(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config formatted by hand: one-line objects, aligned colons, a
    /// field order of its own.
    const HAND: &str = "{\n  \"master\":   { \"address\": \"127.0.0.1:7001\", \"throttle\": 1.0 },\n  \"slave\":    { \"address\": \"127.0.0.1:7002\" },\n\n  \"policy\":   { \"transfer\": \"sender\",  \"threshold\": 30 }\n}\n";

    #[test]
    fn a_threshold_in_another_unit_is_cleared_with_the_reason() {
        let file: ConfigFile = crate::config::parse(HAND, "test").unwrap();
        let mut editor = ConfigEditor::new(PathBuf::from("unused.json"), file);
        assert_eq!(editor.text("policy.threshold"), "30");
        // Jobs to milliseconds: 30 jobs is not 30 ms.
        editor.set_text("policy.transfer", "completion");
        assert_eq!(editor.text("policy.threshold"), "");
        assert_eq!(
            editor.status.as_deref(),
            Some(
                "Threshold cleared: completion counts it in ms, sender in jobs; blank is \
                 completion's own (10 ms)"
            )
        );
        assert_eq!(editor.config().unwrap().policy.threshold(), 10);
        // Milliseconds to milliseconds: a threshold typed stays.
        editor.set_text("policy.threshold", "25");
        editor.set_text("policy.transfer", "adaptive");
        assert_eq!(editor.text("policy.threshold"), "25");
        assert_eq!(editor.status, None);
        // A name half typed changes nothing.
        editor.set_text("policy.transfer", "sen");
        assert_eq!(editor.text("policy.threshold"), "25");
        assert!(editor.error("policy.transfer").is_some());
        editor.set_text("policy.transfer", "sender");
        assert_eq!(editor.text("policy.threshold"), "");
    }

    #[test]
    fn an_edit_changes_only_the_edited_values_text() {
        let edits = [
            ("master.address", Some(serde_json::json!("10.0.0.1:7001"))),
            ("policy.threshold", Some(serde_json::json!(12))),
        ];
        let out = edit_json(HAND, &edits).unwrap();
        let want = HAND
            .replace("127.0.0.1:7001", "10.0.0.1:7001")
            .replace("\"threshold\": 30", "\"threshold\": 12");
        assert_eq!(out, want);
        // The same file read back gives the edited values.
        let file = crate::config::parse(&out, "test").unwrap();
        assert_eq!(file.master.address.as_deref(), Some("10.0.0.1:7001"));
        assert_eq!(file.policy.threshold, Some(12));
    }

    #[test]
    fn a_field_or_section_the_file_lacks_is_added_a_removed_one_goes_and_one_newline_ends_it() {
        let edits = [
            ("slave.workers", Some(serde_json::json!(2))),
            ("workload.initial", Some(serde_json::json!(1.111111))),
            ("master.throttle", None),
        ];
        let out = edit_json(&format!("{HAND}\n\n"), &edits).unwrap();
        assert!(out.ends_with("}\n") && !out.ends_with("\n\n"), "{out:?}");
        let file = crate::config::parse(&out, "test").unwrap();
        assert_eq!(file.slave.workers, 2);
        assert_eq!(file.workload.initial, 1.111111);
        assert_eq!(
            file.master.throttle,
            crate::config::ConfigFile::default().master.throttle
        );
        assert!(!out.contains("\"throttle\": 1.0"), "{out}");
        // The lines not edited are as they were.
        assert!(
            out.contains("  \"policy\":   { \"transfer\": \"sender\",  \"threshold\": 30 }"),
            "{out}"
        );
        // A missing file's text ("{}") gets only the edits.
        let out = edit_json(
            "{}\n",
            &[("master.address", Some(serde_json::json!("127.0.0.1:9")))],
        )
        .unwrap();
        let file = crate::config::parse(&out, "test").unwrap();
        assert_eq!(file.master.address.as_deref(), Some("127.0.0.1:9"));
        assert!(edit_json("[1]", &[]).unwrap_err().contains("top level"));
        assert!(
            edit_json(
                "{ \"master\": 5 }",
                &[("master.address", Some(serde_json::json!("x")))]
            )
            .unwrap_err()
            .contains("\"master\" that is not an object")
        );
    }
}
