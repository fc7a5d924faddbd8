// Package pair links a WhatsApp account to wactl, once, from a terminal or a
// script: it drives whatsmeow's QR channel (or phone-number pairing), checks
// that the phone that scanned is the account's phone, and reports every step
// as a typed Event so that a terminal view and a JSON stream share one flow.
package pair
