package sqlite

import (
	"testing"

	"github.com/wactl/wactl/pkg/store/storetest"
)

func TestEditOrder(t *testing.T) { storetest.EditOrder(t, openTest) }
