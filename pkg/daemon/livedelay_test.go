package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The delay from a live message's WhatsApp timestamp to its record is on
// /metrics (issue 21: backpressure visible when the store falls behind).
func TestLiveMessageDelayOnMetrics(t *testing.T) {
	srv := serve(t, sampleStatus)
	now := time.Now()
	observeLiveDelay(now.Add(-7*time.Second), now)
	observeLiveDelay(time.Time{}, now) // no timestamp: not a delay
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if !strings.Contains(body, "\nwactl_live_message_delay_seconds_count ") ||
		!strings.Contains(body, `wactl_live_message_delay_seconds_bucket{le="5"}`) {
		t.Fatal("/metrics lacks wactl_live_message_delay_seconds")
	}
	if liveDelayCount() < 1 {
		t.Fatal("the 7 s delay was not observed")
	}
}

func liveDelayCount() uint64 {
	ch := make(chan prometheus.Metric, 1)
	liveMessageDelay.Collect(ch)
	var m dto.Metric
	(<-ch).Write(&m)
	return m.GetHistogram().GetSampleCount()
}
