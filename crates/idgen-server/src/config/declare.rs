//! The `settings!` macro: from one declaration per setting it generates the [`Config`] struct,
//! its defaults, the clap [`Flags`], the [`Setting`] enum with each setting's variable, flag
//! and expectation, and the per-setting parse and range check. `settings.rs` invokes it once.
//!
//! [`Config`]: super::Config
//! [`Flags`]: super::Flags
//! [`Setting`]: super::Setting

/// One entry per setting:
///
/// ```text
/// Variant => field: Type {
///     env: "IDGEN_NAME", group: Server, value: "N", default: <expr>, shown: "`0` (off)",
///     help: "short line for --help",
///     parse: <fn(&str) -> Option<Type>>, valid: <fn(&Type) -> bool>, expect: <String expr>,
///     doc: "the meaning column of docs/configuration.md",
/// }
/// ```
///
/// The flag is `--` plus the field name in kebab case (clap derives it), so it is not written.
macro_rules! settings {
    ($(
        $variant:ident => $field:ident: $ty:ty {
            env: $env:literal,
            group: $group:ident,
            value: $value:literal,
            default: $default:expr,
            shown: $shown:literal,
            help: $help:literal,
            parse: $parse:expr,
            valid: $valid:expr,
            expect: $expect:expr,
            doc: $doc:literal $(,)?
        }
    )*) => {
        /// The server's settings. Tests build it in code (`Config { bind: ..., ..Config::default() }`);
        /// the binary loads it with [`Config::load`].
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Config {
            $(#[doc = $help] pub $field: $ty,)*
            /// Whether `worker_id` was given (env or flag). In Redis mode an unset worker id means
            /// "lease any free one"; a given one is leased as is or start-up fails.
            pub worker_id_fixed: bool,
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($field: $default,)* worker_id_fixed: false }
            }
        }

        /// The command-line flags. Each overrides the `IDGEN_*` variable of the same name. Values
        /// are taken as text and parsed like the variables, so a bad flag gets the same one-line
        /// message as a bad variable.
        #[derive(Debug, Default, Clone, clap::Parser)]
        #[command(
            name = "idgen-server",
            version,
            about = "idgen's HTTP server: unique IDs of every kind",
            // A flag given twice: the last one wins, as with most Unix tools.
            args_override_self = true
        )]
        pub struct Flags {
            $(
                #[arg(long, global = true, value_name = $value, help = Setting::$variant.help_line())]
                pub $field: Option<String>,
            )*
            /// What to do instead of serving.
            #[command(subcommand)]
            pub command: Option<super::Command>,
        }

        /// One setting: its variable, its flag and what a valid value is.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Setting {
            $($variant,)*
        }

        /// The raw text of every variable, as envy reads it from `IDGEN_*`.
        #[derive(Debug, Default, serde::Deserialize)]
        pub(super) struct RawEnv {
            $(#[serde(default)] $field: Option<String>,)*
        }

        impl Setting {
            /// Every setting, in the order `--help` and the docs list them.
            pub const ALL: &'static [Setting] = &[$(Setting::$variant,)*];

            /// `IDGEN_...`
            pub fn env_var(self) -> &'static str {
                match self {
                    $(Setting::$variant => $env,)*
                }
            }

            /// The field name, e.g. `worker_id`.
            pub fn field(self) -> &'static str {
                match self {
                    $(Setting::$variant => stringify!($field),)*
                }
            }

            /// What a valid value looks like, as the message of an error about this setting.
            pub fn expectation(self) -> String {
                match self {
                    $(Setting::$variant => String::from($expect),)*
                }
            }

            /// The value name in `--help`, e.g. `HOST:PORT`.
            pub fn value_name(self) -> &'static str {
                match self {
                    $(Setting::$variant => $value,)*
                }
            }

            /// The one-line help of `--help`, without the variable and default.
            pub fn help(self) -> &'static str {
                match self {
                    $(Setting::$variant => $help,)*
                }
            }

            /// The default as the docs show it.
            pub fn shown_default(self) -> &'static str {
                match self {
                    $(Setting::$variant => $shown,)*
                }
            }

            /// The docs' section for this setting.
            pub fn group(self) -> Group {
                match self {
                    $(Setting::$variant => Group::$group,)*
                }
            }

            /// The meaning column of docs/configuration.md.
            pub fn doc(self) -> &'static str {
                match self {
                    $(Setting::$variant => $doc,)*
                }
            }

            /// Parses `text` into `config`'s field; `false` if it does not parse.
            pub(super) fn assign(self, config: &mut Config, text: &str) -> bool {
                match self {
                    $(Setting::$variant => {
                        let parse: fn(&str) -> Option<$ty> = $parse;
                        match parse(text) {
                            Some(value) => {
                                config.$field = value;
                                true
                            }
                            None => false,
                        }
                    })*
                }
            }

            /// Whether `config`'s value of this setting is in range on its own.
            pub(super) fn is_valid(self, config: &Config) -> bool {
                match self {
                    $(Setting::$variant => {
                        let valid: fn(&$ty) -> bool = $valid;
                        valid(&config.$field)
                    })*
                }
            }

            /// The flag's text, if the flag was given.
            pub(super) fn flag_text(self, flags: &Flags) -> Option<&str> {
                match self {
                    $(Setting::$variant => flags.$field.as_deref(),)*
                }
            }

            /// The variable's text, if the variable was set.
            pub(super) fn env_text(self, raw: &RawEnv) -> Option<&str> {
                match self {
                    $(Setting::$variant => raw.$field.as_deref(),)*
                }
            }
        }
    };
}

pub(super) use settings;
