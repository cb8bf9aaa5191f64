//! The web pages, embedded in the binary: `yeyak serve` needs no files beside it. The citizen's
//! page is `/`, the operator's `/operator` (the page loads without a token; every data call it
//! makes carries the admin token).

/// `(file name, content type, bytes)` of every file served under `/static/`.
pub const FILES: [(&str, &str, &[u8]); 6] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "regions.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/regions.js"),
    ),
    (
        "operator.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/operator.html"),
    ),
    (
        "operator.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/operator.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/style.css"),
    ),
];

pub fn file(name: &str) -> Option<(&'static str, &'static [u8])> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| (*t, *b))
}
