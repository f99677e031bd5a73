//! Full-screen live view of the demo (ratatui): figures, the boiler plant, and the latest value
//! of every sensor, refreshed twice a second. `q`, `Esc` or Ctrl-C stops the demo.

use std::collections::HashMap;
use std::time::Duration;

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use tokio_util::sync::CancellationToken;

use super::view::{self, HIGHLIGHTS, Info};
use crate::context::Core;
use crate::model::Timestamp;
use crate::store::SensorRow;

pub(crate) fn run(
    rt: &tokio::runtime::Handle,
    core: &Core,
    info: &Info,
    stop: &CancellationToken,
    done: &CancellationToken,
) {
    let mut terminal = ratatui::init();
    let mut sensors: HashMap<String, SensorRow> = HashMap::new();
    let mut last_refresh = None::<tokio::time::Instant>;
    while !done.is_cancelled() {
        let unknown = core.store.latest.len() > sensors.len();
        if unknown || last_refresh.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
            if let Ok(rows) = rt.block_on(core.reader.sensors()) {
                sensors = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
            }
            last_refresh = Some(tokio::time::Instant::now());
        }
        if terminal.draw(|f| draw(f, core, info, &sensors)).is_err() {
            break;
        }
        if event::poll(Duration::from_millis(500)).unwrap_or(false)
            && let Ok(Event::Key(k)) = event::read()
        {
            let ctrl_c =
                k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
            if k.kind == KeyEventKind::Press
                && (ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc))
            {
                stop.cancel();
            }
        }
    }
    ratatui::restore();
}

fn draw(f: &mut Frame<'_>, core: &Core, info: &Info, sensors: &HashMap<String, SensorRow>) {
    let alarm_lines = view::alarm_lines(core);
    let [header, plant, alarms, table, footer] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(HIGHLIGHTS.len() as u16 + 2),
        Constraint::Length(alarm_lines.len().clamp(1, 8) as u16 + 2),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let cfg = core.config();
    let title = format!(
        " markoff demo: {} ",
        cfg.gateway.name.as_deref().unwrap_or(&cfg.gateway.id)
    );
    let head = Paragraph::new(vec![
        Line::from(Span::styled(
            view::summary(core),
            Style::default().add_modifier(Modifier::BOLD),
        )),
        Line::from(format!(
            "buffer {}   API {}",
            info.data_dir.join("markoff.db").display(),
            info.api
        )),
        Line::from(format!("Modbus plant {}", info.plant)),
    ])
    .block(Block::default().borders(Borders::ALL).title(title));
    f.render_widget(head, header);

    let unit = |id: &str| sensors.get(id).map_or("", |s| s.unit.as_str());
    let name = |id: &str| sensors.get(id).map_or(id.to_owned(), |s| s.name.clone());
    let plant_rows: Vec<Row<'_>> = HIGHLIGHTS
        .iter()
        .map(|id| {
            let v = view::value_of(core, id, unit(id));
            let style = if v == "LEAK" {
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            Row::new(vec![name(id), v]).style(style)
        })
        .collect();
    f.render_widget(
        Table::new(
            plant_rows,
            [Constraint::Percentage(60), Constraint::Percentage(40)],
        )
        .block(Block::default().borders(Borders::ALL).title(" plant ")),
        plant,
    );

    let alarm_text: Vec<Line<'_>> = if alarm_lines.is_empty() {
        vec![Line::from("no open alarms")]
    } else {
        alarm_lines
            .into_iter()
            .map(|(active, l)| {
                let style = if active {
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
                } else {
                    Style::default().fg(Color::Yellow)
                };
                Line::from(Span::styled(l, style))
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(alarm_text).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" alarms (markoff alarms, markoff ack ID --user demo) "),
        ),
        alarms,
    );

    let now = Timestamp::now();
    let rows: Vec<Row<'_>> = core
        .store
        .latest
        .snapshot()
        .into_iter()
        .filter(|(id, _)| !HIGHLIGHTS.contains(&id.as_str()))
        .map(|(id, v)| {
            let age = (now.as_millis() - v.ts.as_millis()).max(0) / 1000;
            Row::new(vec![
                id.to_string(),
                name(id.as_str()),
                view::value_of(core, id.as_str(), unit(id.as_str())),
                format!("{age}s ago"),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Percentage(25),
                Constraint::Percentage(40),
                Constraint::Percentage(20),
                Constraint::Percentage(15),
            ],
        )
        .header(
            Row::new(vec!["sensor", "name", "value", "read"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" latest values "),
        ),
        table,
    );
    let log = info
        .log_file
        .as_ref()
        .map(|p| format!("   log: {}", p.display()))
        .unwrap_or_default();
    f.render_widget(
        Paragraph::new(format!("q / Esc / Ctrl-C: stop{log}")),
        footer,
    );
}
