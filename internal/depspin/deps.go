package main

import (
	_ "cloud.google.com/go/firestore"
	_ "github.com/charmbracelet/lipgloss"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/mdp/qrterminal/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/skip2/go-qrcode"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "go.mau.fi/whatsmeow"
	_ "go.mau.fi/whatsmeow/store/sqlstore"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
)

func main() {}
