"""Every setting the app reads from its environment, read and checked in one place.

Three layers, each its own module:

- `parsers`: how one variable's text becomes a value (a number within bounds, a flag, a list …),
  adding a sentence naming the variable when it cannot.
- `settings`: the table. `Settings` declares each setting once (its variable, parser with bounds,
  default and Flask key), with the constants the rest of the app shares with it.
- `loader`: `load_settings` reads every row in one loop, then the checks across rows and the defaults
  that write files into the instance folder; a problem stops start-up with one sentence each.

`current` hands the loaded `Settings` to the running app: code reads `current_settings().port`, typed,
rather than a string key of Flask's config. Flask's config still holds what Flask and its extensions read.
"""

from app.config.current import current_settings, install_settings, settings_of
from app.config.loader import (
    CONFIG_ERROR_EXIT_STATUS,
    ConfigError,
    config_error_sentences,
    exit_with,
    load_settings,
    load_settings_or_exit,
)
from app.config.parsers import LOGO_MAX_BYTES, LOGO_SUFFIXES
from app.config.settings import (
    ALL_PERMISSIONS,
    COLOR_SCHEMES,
    DEFAULT_CUSTOMER_CLAIMS,
    DEFAULT_RETRY_SCHEDULE,
    DEFAULT_THEME_PRIMARY,
    DEFAULT_VERDICT_RULES,
    INSTANCE_DIR,
    LOCALES,
    MAX_CONTENT_LENGTH,
    MAX_WEBHOOK_BODY,
    PROJECT_ROOT,
    RISK_ASSESSMENT_PERMISSIONS,
    SESSION_TTL_MAX_SECONDS,
    SESSION_TTL_MIN_SECONDS,
    SETTINGS,
    STAFF_ROLES,
    THEME_FONTS,
    THEME_RADII,
    TIERS,
    VERDICT_OUTCOMES,
    Settings,
    engine_options,
)

__all__ = [
    "ALL_PERMISSIONS",
    "COLOR_SCHEMES",
    "CONFIG_ERROR_EXIT_STATUS",
    "DEFAULT_CUSTOMER_CLAIMS",
    "DEFAULT_RETRY_SCHEDULE",
    "DEFAULT_THEME_PRIMARY",
    "DEFAULT_VERDICT_RULES",
    "INSTANCE_DIR",
    "LOCALES",
    "LOGO_MAX_BYTES",
    "LOGO_SUFFIXES",
    "MAX_CONTENT_LENGTH",
    "MAX_WEBHOOK_BODY",
    "PROJECT_ROOT",
    "RISK_ASSESSMENT_PERMISSIONS",
    "SESSION_TTL_MAX_SECONDS",
    "SESSION_TTL_MIN_SECONDS",
    "SETTINGS",
    "STAFF_ROLES",
    "THEME_FONTS",
    "THEME_RADII",
    "TIERS",
    "VERDICT_OUTCOMES",
    "ConfigError",
    "Settings",
    "config_error_sentences",
    "current_settings",
    "engine_options",
    "exit_with",
    "install_settings",
    "load_settings",
    "load_settings_or_exit",
    "settings_of",
]
