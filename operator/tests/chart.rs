//! Checks of the Helm chart `charts/weir`: its CRD is the generated one, and the chart lints,
//! renders with default and non-default values, and every rendered manifest validates against
//! the Kubernetes 1.32 schemas (`scripts/validate-chart.py`, run with the venv that
//! `scripts/setup.sh` makes: helm-python-sdk bundles Helm v4's SDK, so no `helm` binary or
//! cluster is needed).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ sits in the repository")
        .to_path_buf()
}

/// The Python of the venv `scripts/setup.sh` installs the chart tools into.
fn venv_python() -> PathBuf {
    let cache = std::env::var_os("WEIR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/weir")
        });
    cache.join("venv/bin/python")
}

#[test]
fn chart_crd_is_the_generated_crd() {
    let root = repo_root();
    let generated = weir_crds::crd_yaml().expect("the CRD renders");
    let committed =
        std::fs::read_to_string(root.join("crds/flinkjob.yaml")).expect("crds/flinkjob.yaml");
    let in_chart = std::fs::read_to_string(root.join("charts/weir/crds/flinkjob.yaml"))
        .expect("charts/weir/crds/flinkjob.yaml");
    assert!(
        in_chart == committed,
        "charts/weir/crds/flinkjob.yaml differs from crds/flinkjob.yaml: run scripts/sync-chart-crd.sh"
    );
    assert!(
        committed == generated,
        "crds/flinkjob.yaml is not the generated CRD: run `WEIR_UPDATE_CRD=1 cargo nextest run -p \
         weir-crds`, then scripts/sync-chart-crd.sh"
    );
}

#[test]
fn chart_lints_renders_and_validates() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs helm-python-sdk and kubernetes-validate)",
        python.display()
    );
    let root = repo_root();
    let output = Command::new(&python)
        .arg(root.join("scripts/validate-chart.py"))
        .arg(root.join("charts/weir"))
        .current_dir(&root)
        .output()
        .expect("run scripts/validate-chart.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chart validation failed:\n{}\n{stderr}",
        stdout
            .lines()
            .filter(|l| !l.starts_with("ok "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stdout.contains("chart: all checks passed"),
        "{stdout}\n{stderr}"
    );
    let validated = stdout
        .lines()
        .filter(|l| l.contains("is a valid 1.32.0 manifest"))
        .count();
    assert!(
        validated >= 10,
        "only {validated} manifests validated:\n{stdout}"
    );
}
