//! A `multipart/form-data` body (a form with file uploads) split into its fields, as Robyn
//! hands them to the app: each part with a file name is a file (`request.files`, by file
//! name), the others text fields (`request.form_data`, by field name). The body was read
//! within `--max-body-size` already; a malformed one is the client's error (400).

use axum::http::{self, HeaderMap};
use bytes::Bytes;
use pyhost::bridge::FormParts;

/// The boundary, when the request says its body is `multipart/form-data`.
pub fn boundary(headers: &HeaderMap) -> Option<Result<String, multer::Error>> {
    let content_type = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("multipart/form-data").then(|| multer::parse_boundary(content_type))
}

/// Every part of the body, in order; what is wrong with it otherwise, in words for the client.
pub async fn split(body: Bytes, boundary: String) -> Result<FormParts, multer::Error> {
    let whole = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(whole, boundary);
    let mut parts = FormParts::default();
    while let Some(field) = multipart.next_field().await? {
        let file_name = field.file_name().map(str::to_owned);
        let name = field.name().unwrap_or_default().to_owned();
        let data = field.bytes().await?;
        match file_name {
            Some(file_name) => parts.files.push((file_name, data)),
            None => parts.fields.push((name, String::from_utf8_lossy(&data).into_owned())),
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    const BODY: &[u8] = b"--XyZ\r\n\
        Content-Disposition: form-data; name=\"title\"\r\n\r\n\
        hello\r\n\
        --XyZ\r\n\
        Content-Disposition: form-data; name=\"upload\"; filename=\"a.bin\"\r\n\
        Content-Type: application/octet-stream\r\n\r\n\
        \x00\xff\r\n\
        --XyZ--\r\n";

    #[tokio::test]
    async fn fields_and_files_are_told_apart() {
        let boundary = boundary(&headers("multipart/form-data; boundary=XyZ")).unwrap().unwrap();
        let parts = split(Bytes::from_static(BODY), boundary).await.unwrap();
        assert_eq!(parts.fields, vec![("title".to_owned(), "hello".to_owned())]);
        assert_eq!(parts.files, vec![("a.bin".to_owned(), Bytes::from_static(b"\x00\xff"))]);
    }

    #[test]
    fn only_multipart_form_data_has_a_boundary() {
        assert!(boundary(&headers("application/json")).is_none());
        assert!(boundary(&HeaderMap::new()).is_none());
        assert!(boundary(&headers("Multipart/Form-Data; boundary=\"q\"")).unwrap().is_ok());
        assert!(boundary(&headers("multipart/form-data")).unwrap().is_err());
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let cut = Bytes::from_static(&BODY[..BODY.len() - 12]);
        assert!(split(cut, "XyZ".to_owned()).await.is_err());
    }
}
