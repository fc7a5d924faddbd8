package main

import (
	"os"

	"github.com/wactl/wactl/internal/cmd"
)

func main() { os.Exit(cmd.Main()) }
