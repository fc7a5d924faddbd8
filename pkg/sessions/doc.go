// Package sessions keeps each WhatsApp account's session on disk so that
// accounts restore after a restart.
//
// Layout under the sessions root (SESSIONS_PATH):
//
//	<root>/<accountId>/whatsmeow.db   whatsmeow's SQLite device store
//	<root>/<accountId>/account.json   metadata, replaced atomically
//	<root>/<accountId>/.lock          flock held while the account is connected
//	<root>/removed/<time>-<accountId>/ accounts an operator removed
//
// Directories are 0700 and files 0600 from the moment they are created,
// whatever the umask. Nothing in this package deletes a session except
// Remove with Purge, an explicit operator action.
package sessions
