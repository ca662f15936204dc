//! Reading form submissions (multipart or urlencoded) with sample files streamed straight
//! into the core's upload path: a file part is hashed and written to disk chunk by chunk
//! and never held whole in memory.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use nestbox_core::{Core, StagedSample};

/// Largest text field we accept. Form fields are option strings and URLs; anything larger
/// is abuse, and reading it whole would let a client make us buffer the body.
const MAX_FIELD: usize = 1024 * 1024;
/// Most parts we read from one multipart body.
const MAX_PARTS: usize = 1000;

/// A parsed form.
#[derive(Default)]
pub struct FormInput {
    /// Text fields in request order (a name may repeat).
    pub fields: Vec<(String, String)>,
    /// File parts whose field name was one of the requested file fields.
    pub files: Vec<UploadedFile>,
}

impl FormInput {
    /// The first value of a text field, like Werkzeug's `request.form.get`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The non-blank lines of a text field, trimmed (newline-separated URLs, hashes).
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// One received file part.
pub struct UploadedFile {
    /// The form field name (`file`, `files`, …).
    pub field: String,
    /// The client's file name, unsanitised (the core sanitises when it names the target).
    pub filename: String,
    /// The staged content.
    pub staged: StagedSample,
}

/// Why a form could not be read.
#[derive(Debug)]
pub enum FormError {
    /// The body is not a well-formed form.
    Malformed(String),
    /// A file part exceeded the upload limit.
    TooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// Staging the upload failed on our side.
    Internal(nestbox_core::Error),
}

impl From<nestbox_core::Error> for FormError {
    fn from(e: nestbox_core::Error) -> Self {
        match e {
            nestbox_core::Error::SampleTooLarge { max } => FormError::TooLarge { max },
            e => FormError::Internal(e),
        }
    }
}

/// A comma-separated tag list as every dialect stores it: trimmed, blanks dropped,
/// sorted, duplicates removed.
pub fn parse_tags(v: Option<&str>) -> Vec<String> {
    let mut tags: Vec<String> = v
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Reads a form body. Parts named in `file_fields` that carry a non-empty file name are
/// streamed into the upload path; a part sent with `filename=""` (some clients do that
/// for plain fields) is read as a text field. Other file parts are drained and dropped,
/// as Werkzeug would keep them out of `request.form`. JSON and other bodies give an empty
/// form: Cuckoo reads only `request.form`.
pub async fn read_form(
    core: &Core,
    req: Request,
    file_fields: &[&str],
) -> Result<FormInput, FormError> {
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ctype.starts_with("multipart/form-data") {
        read_multipart(core, req, file_fields).await
    } else if ctype.starts_with("application/x-www-form-urlencoded") {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FIELD * 4)
            .await
            .map_err(|e| FormError::Malformed(e.to_string()))?;
        let fields = url::form_urlencoded::parse(&bytes).into_owned().collect();
        Ok(FormInput {
            fields,
            files: Vec::new(),
        })
    } else {
        Ok(FormInput::default())
    }
}

async fn read_multipart(
    core: &Core,
    req: Request,
    file_fields: &[&str],
) -> Result<FormInput, FormError> {
    let max = core.limits.max_upload;
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| FormError::Malformed(e.body_text()))?;
    // A body over the request limit surfaces as a multipart error with status 413.
    let err = move |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            FormError::TooLarge { max }
        } else {
            FormError::Malformed(e.body_text())
        }
    };
    let mut form = FormInput::default();
    let mut parts = 0usize;
    while let Some(mut field) = mp.next_field().await.map_err(err)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(FormError::Malformed("too many form parts".into()));
        }
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        match filename {
            Some(filename) if !filename.is_empty() => {
                if !file_fields.contains(&name.as_str()) {
                    while field.chunk().await.map_err(err)?.is_some() {}
                    continue;
                }
                let mut upload = core.begin_upload().await?;
                while let Some(chunk) = field.chunk().await.map_err(err)? {
                    upload.write(&chunk).await?;
                }
                let staged = upload.finish().await?;
                form.files.push(UploadedFile {
                    field: name,
                    filename,
                    staged,
                });
            }
            _ => {
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(err)? {
                    if buf.len() + chunk.len() > MAX_FIELD {
                        return Err(FormError::Malformed(format!("field {name:?} is too large")));
                    }
                    buf.extend_from_slice(&chunk);
                }
                form.fields
                    .push((name, String::from_utf8_lossy(&buf).into_owned()));
            }
        }
    }
    Ok(form)
}
