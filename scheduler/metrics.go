package scheduler

import (
	"time"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
	"github.com/hourglass-scheduler/hourglass/metrics/labels"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scheduler's Prometheus metrics.
type metrics struct {
	fireLateness prometheus.Histogram
	fired        *prometheus.CounterVec
	// attempts counts ended attempts by queue and outcome: succeeded,
	// failed (a webhook's error or a worker's nack), lease_expired.
	attempts *prometheus.CounterVec
	// sendDuration is how long webhook requests took.
	sendDuration prometheus.Histogram
	// skipped counts schedule occurrences skipped by their overlap
	// policy.
	skipped prometheus.Counter
	// queues bounds the queue label's values.
	queues *labels.Limiter
}

func newMetrics(s *Scheduler, reg prometheus.Registerer) *metrics {
	m := &metrics{
		queues: s.cfg.QueueLabels,
		fireLateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_fire_lateness_seconds",
			Help: "How long after its due time each task's firing was committed, " +
				"i.e. the earliest moment it could be sent (0 when committed ahead of time, as it should be).",
			// 1 ms to 1 h.
			Buckets: []float64{.001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_tasks_fired_total",
			Help: "Delivery attempts this node fired (webhook sends and worker leases) as leader, by queue.",
		}, []string{"queue"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_attempts_total",
			Help: "Delivery attempts this node ended as leader, by queue and outcome (succeeded, failed, lease_expired).",
		}, []string{"queue", "outcome"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_schedule_occurrences_skipped_total",
			Help: "Occurrences of schedules with overlap skip that fell due while the previous occurrence had not ended, and were cancelled.",
		}),
		sendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hourglass_delivery_duration_seconds",
			Help:    "How long webhook deliveries took, from request to response (or error).",
			Buckets: []float64{.001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.sendDuration, m.skipped)
		reg.MustRegister(m.fireLateness, m.fired, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hourglass_wheel_tasks",
			Help: "Tasks held in memory, in the leader's timing wheel (0 on a follower).",
		}, func() float64 { return float64(s.Loaded()) }))
	}
	return m
}

// observeFired records tasks whose Fire committed at now.
func (m *metrics) observeFired(now time.Time, tasks []*fsmpb.Task) {
	at := now.UnixNano()
	var queue string
	var counter prometheus.Counter
	for _, t := range tasks {
		m.fireLateness.Observe(time.Duration(max(0, at-t.DueAt)).Seconds())
		if counter == nil || t.Queue != queue {
			queue, counter = t.Queue, m.fired.WithLabelValues(m.queues.Value(t.Queue))
		}
		counter.Inc()
	}
}

// attempt counts an ended attempt of a task of queue.
func (m *metrics) attempt(queue, outcome string) {
	m.attempts.WithLabelValues(m.queues.Value(queue), outcome).Inc()
}
