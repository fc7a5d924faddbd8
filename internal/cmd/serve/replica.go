package serve

import (
	gfs "cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/replica"
)

// replicaOptions turns sessions.replica into the daemon's options; nil when
// it is off. The key file is read (and its mode checked) here, so a loose or
// unreadable key stops serve at start instead of at the first copy.
func replicaOptions(cfg *config.Config, client *gfs.Client) (*daemon.ReplicaOptions, error) {
	if cfg.Sessions.Replica != "firestore" || client == nil {
		return nil, nil // config validation requires the Firestore lease (and so a client)
	}
	key, err := replica.LoadKey(cfg.Sessions.ReplicaKeyFile)
	if err != nil {
		return nil, err
	}
	return &daemon.ReplicaOptions{Client: client, Key: key, Interval: cfg.Sessions.ReplicaInterval}, nil
}
