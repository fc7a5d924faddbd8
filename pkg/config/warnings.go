package config

import (
	"fmt"
	"io/fs"
	"strings"
)

// Warnings are things that work but should not stay as they are; `config
// validate` and `doctor` print them, and they never change the exit code.

// ConfigWarnings are the warnings that follow from the values alone (doctor
// has no load-time details such as file modes).
func ConfigWarnings(c *Config) Problems {
	var w Problems
	a := c.API
	if a.FirebaseProjectID != "" && len(a.AllowedUIDs) == 0 && len(a.AllowedEmails) == 0 {
		w.add("api.allowed_uids", "", fmt.Sprintf("no reader allowlist: every verified user of Firebase project %q can read every conversation; "+
			"list the readers in api.allowed_uids or api.allowed_emails", a.FirebaseProjectID))
	}
	if a.FirebaseProjectID != "" && a.AllowAnonymous {
		w.add("api.allow_anonymous", "", "anonymous sign-ins of the Firebase project are accepted: anyone who can open the app can sign in; "+
			"set it to false unless an allowlist limits readers")
	}
	if a.FirebaseProjectID != "" && a.AllowUnverifiedEmail && len(a.AllowedEmails) > 0 {
		w.add("api.allow_unverified_email", "", "api.allowed_emails matches e-mail addresses nobody verified: anyone can sign up "+
			"with a listed address; set it to false")
	}
	return w
}

// inlineSecretWarnings lists the secrets a config file holds when others
// than its owner can read the file.
func inlineSecretWarnings(file string, mode fs.FileMode, get func(string) string) Problems {
	var w Problems
	if mode.Perm()&0o077 == 0 {
		return w
	}
	for _, k := range keys {
		if !k.Secret || strings.TrimSpace(get(k.Key)) == "" {
			continue
		}
		w.add(k.Key, file, fmt.Sprintf("a secret in a file other users can read (mode %04o); run `chmod 600 %s`, or move it to %s_FILE",
			mode.Perm(), file, EnvName(k.Key)))
	}
	return w
}

func emptySecretFileWarning(key, variable, path string) Problem {
	return Problem{Key: key, Where: variable, Msg: fmt.Sprintf("%s is empty, so %s is not set; write the value into it or unset %s",
		path, key, variable)}
}
