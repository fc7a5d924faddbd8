package main
import (
 _ "go.mau.fi/whatsmeow"
 _ "go.mau.fi/whatsmeow/store/sqlstore"
 _ "cloud.google.com/go/firestore"
 _ "github.com/spf13/cobra"
 _ "github.com/spf13/viper"
 _ "github.com/charmbracelet/lipgloss"
 _ "github.com/mdp/qrterminal/v3"
 _ "modernc.org/sqlite"
 _ "github.com/coreos/go-systemd/v22/daemon"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/skip2/go-qrcode"
 _ "golang.org/x/term"
)
func main(){}
