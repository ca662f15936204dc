//! The starter rule set written for nestbox and shipped inside the binary.
//!
//! The sources live in the repository's `rules/` directory (so the `yara` CLI can be run on
//! them as they are, which the cross-check test does) and are embedded here at build time.

/// `(file name, source)` of every starter rule file.
pub const STARTER_RULES: &[(&str, &str)] = &[
    ("eicar.yar", include_str!("../../../rules/eicar.yar")),
    ("packers.yar", include_str!("../../../rules/packers.yar")),
    (
        "pe_traits.yar",
        include_str!("../../../rules/pe_traits.yar"),
    ),
    ("scripts.yar", include_str!("../../../rules/scripts.yar")),
    ("macros.yar", include_str!("../../../rules/macros.yar")),
    (
        "webshells.yar",
        include_str!("../../../rules/webshells.yar"),
    ),
    ("crypto.yar", include_str!("../../../rules/crypto.yar")),
];
