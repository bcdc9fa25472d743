//! The saved login token of the operator client (`DATA_DIR/login.json`,
//! mode 0600).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the saved login inside the operator's data folder.
pub const TOKEN_FILE: &str = "login.json";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Secret(#[from] lifeline_core::secrets::SecretFileError),
    #[error("cannot use {path}: {reason}")]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
pub struct SavedLogin {
    pub username: String,
    pub token: String,
}

pub fn save(data_dir: &Path, username: &str, token: &str) -> Result<(), TokenError> {
    std::fs::create_dir_all(data_dir).map_err(|e| TokenError::File {
        path: data_dir.to_owned(),
        reason: e.to_string(),
    })?;
    let json = serde_json::to_vec(&SavedLogin {
        username: username.into(),
        token: token.into(),
    })
    .expect("saved login always serialises");
    lifeline_core::secrets::write_private(&data_dir.join(TOKEN_FILE), &json)?;
    Ok(())
}

/// The saved login, if any; refused when others can read it.
pub fn load(data_dir: &Path) -> Result<Option<SavedLogin>, TokenError> {
    let path = data_dir.join(TOKEN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    lifeline_core::secrets::check_private(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| TokenError::File {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TokenError::File {
            path,
            reason: format!("not a saved login ({e}); run `lifeline operator login` again"),
        })
}

pub fn remove(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(TOKEN_FILE));
}
