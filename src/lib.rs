//! mm-pkg turns an upstream Mattermost server release into Debian and RPM packages.
//!
//! The modules read as the pipeline: [`release`] finds and reads the tarball, [`layout`]
//! decides where each file goes, [`package`] is the format-neutral entry stream that
//! [`deb`] and [`rpm`] write, with texts from [`templates`], and [`build`] runs it all.

pub mod build;
pub mod compress;
pub mod context;
pub mod deb;
pub mod layout;
pub mod notify;
pub mod output;
pub mod owned_dir;
pub mod package;
pub mod relations;
pub mod release;
pub mod repo;
pub mod rpm;
pub mod scratch;
pub mod sign;
pub mod sync;
pub mod templates;
pub mod validate;
