//! OS detection and OS package catalogers (dpkg, rpm, apk) for Trawl.
#![deny(missing_docs)]
