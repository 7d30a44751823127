//! Rendering: a pure function of the [`App`]. Nothing here changes state or reads a clock, so every view
//! is tested by drawing into a `Buffer`.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, GraphType, HighlightSpacing, Paragraph, Row,
    StatefulWidget, Table, TableState, Tabs, Widget, Wrap,
};
use shoal_session::PeerStats;

use super::app::{App, Focus, Mode, PeerSort, Status, Tab, TorrentView};
use super::meta::TorrentMeta;
use super::text;

const LABEL: Style = Style::new().fg(Color::DarkGray);
const KEY: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
const DOWN: Color = Color::Cyan;
const UP: Color = Color::Magenta;
const ERROR: Style = Style::new().fg(Color::Red);

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 30 || area.height < 8 {
            Paragraph::new("Shoal: enlarge the window")
                .wrap(Wrap { trim: true })
                .render(area, buf);
            return;
        }
        let rows = self.torrents.len().max(1) as u16;
        // The list gets at most two fifths of the screen; it scrolls to keep the selection in view.
        let list_height = (rows + 2).min((area.height - 2) * 2 / 5).max(3);
        let [header, list, detail, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(list_height),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(self, header, buf);
        render_list(self, list, buf);
        render_detail(self, detail, buf);
        render_footer(self, footer, buf);
        match &self.mode {
            Mode::Normal => {}
            Mode::Help => render_help(area, buf),
            Mode::Add(typed) => render_prompt(
                typed,
                " Add: path to a .torrent file, or a magnet link ",
                " Enter add · Esc cancel ",
                area,
                buf,
            ),
            Mode::Move(id, typed) => {
                let name = self
                    .torrents
                    .iter()
                    .find(|t| t.id == *id)
                    .map_or_else(String::new, |t| self.display_name(t));
                let title = format!(" Move “{}” to the directory: ", text::fit(&name, 40));
                render_prompt(typed, &title, " Enter move · Esc cancel ", area, buf);
            }
            Mode::ConfirmQuit => render_dialog(
                " Quit Shoal? ",
                vec![
                    Line::from("Transfers are running. Quit anyway?"),
                    Line::from(vec![
                        Span::styled("y", KEY),
                        Span::raw(" quit   "),
                        Span::styled("any other key", KEY),
                        Span::raw(" stay"),
                    ]),
                ],
                area,
                buf,
            ),
            Mode::ConfirmRemove(id) => {
                let name = self
                    .torrents
                    .iter()
                    .find(|t| t.id == *id)
                    .map_or_else(String::new, |t| self.display_name(t));
                render_dialog(
                    " Remove torrent ",
                    vec![
                        Line::from(format!("Remove “{}”?", text::fit(&name, 40))),
                        Line::from(vec![
                            Span::styled("r", KEY),
                            Span::raw(" keep the data   "),
                            Span::styled("D", KEY),
                            Span::raw(" delete the data   "),
                            Span::styled("Esc", KEY),
                            Span::raw(" cancel"),
                        ]),
                    ],
                    area,
                    buf,
                );
            }
        }
    }
}

fn render_header(app: &App, area: Rect, buf: &mut Buffer) {
    let down: u64 = app.torrents.iter().map(|t| t.stats.download_rate).sum();
    let up: u64 = app.torrents.iter().map(|t| t.stats.upload_rate).sum();
    let n = app.torrents.len();
    let mut spans = vec![
        Span::styled(
            " Shoal ",
            Style::new().bold().fg(Color::Black).bg(Color::Cyan),
        ),
        Span::raw(format!("  {n} torrent{}  ", if n == 1 { "" } else { "s" })),
        Span::styled(format!("↓ {}", text::rate(down)), Style::new().fg(DOWN)),
        Span::raw("  "),
        Span::styled(format!("↑ {}", text::rate(up)), Style::new().fg(UP)),
    ];
    let help = Line::from(vec![Span::styled("?", KEY), Span::raw(" help ")]);
    if let Some(listen) = app.listen {
        let listen = Span::styled(format!("  listening on {}", text::addr(listen)), LABEL);
        // The address is the first thing to go on a narrow screen.
        if Line::from(spans.clone()).width() + listen.width() + help.width()
            < usize::from(area.width)
        {
            spans.push(listen);
        }
    }
    Line::from(spans).render(area, buf);
    help.alignment(Alignment::Right).render(area, buf);
}

/// A column of the torrent list after the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListColumn {
    Size,
    Progress,
    State,
    Down,
    Up,
    Peers,
    Eta,
    Ratio,
}

/// A list column, its width, and how early it goes when the screen is narrow (higher goes first; 0
/// stays).
const LIST_COLUMNS: [(ListColumn, u16, u8); 8] = [
    (ListColumn::Size, 8, 4),
    (ListColumn::Progress, 8, 0),
    (ListColumn::State, 11, 0),
    (ListColumn::Down, 10, 0),
    (ListColumn::Up, 10, 3),
    (ListColumn::Peers, 5, 6),
    (ListColumn::Eta, 6, 2),
    (ListColumn::Ratio, 5, 7),
];

impl ListColumn {
    fn title(self) -> Line<'static> {
        match self {
            Self::Size => Line::from("Size").right_aligned(),
            Self::Progress => Line::from("Progress"),
            Self::State => Line::from("State"),
            Self::Down => Line::from("Down").right_aligned(),
            Self::Up => Line::from("Up").right_aligned(),
            Self::Peers => Line::from("Peers").right_aligned(),
            Self::Eta => Line::from("ETA").right_aligned(),
            Self::Ratio => Line::from("Ratio").right_aligned(),
        }
    }

    fn cell(self, view: &TorrentView) -> Line<'static> {
        let stats = &view.stats;
        match self {
            Self::Size => Line::from(text::size(stats.bytes_total)).right_aligned(),
            Self::Progress => bar(
                stats.bytes_have,
                stats.bytes_total,
                8,
                &text::percent(stats.bytes_have, stats.bytes_total),
            ),
            Self::State => Line::styled(view.status.label(), status_style(view.status)),
            Self::Down => Line::from(text::rate(stats.download_rate)).right_aligned(),
            Self::Up => Line::from(text::rate(stats.upload_rate)).right_aligned(),
            Self::Peers => {
                Line::from(format!("{}/{}", stats.peers.len(), view.seeds())).right_aligned()
            }
            Self::Eta => Line::from(match view.status {
                Status::Downloading => text::eta(view.eta()),
                _ => String::new(),
            })
            .right_aligned(),
            Self::Ratio => Line::from(
                view.stats
                    .ratio()
                    .map_or_else(|| "–".into(), |r| format!("{r:.2}")),
            )
            .right_aligned(),
        }
    }
}

/// The list's columns that fit beside a name of at least 18 characters, with their widths.
fn list_columns(width: u16) -> Vec<(ListColumn, u16)> {
    const MIN_NAME: u16 = 18;
    let mut columns: Vec<(ListColumn, u16, u8)> = LIST_COLUMNS.to_vec();
    // The highlight mark and its space, then each column and its space.
    let used = |columns: &[(ListColumn, u16, u8)]| -> u16 {
        2 + columns.iter().map(|(_, width, _)| width + 1).sum::<u16>()
    };
    while used(&columns) + MIN_NAME > width {
        let Some(drop) = columns
            .iter()
            .enumerate()
            .filter(|(_, (_, _, order))| *order > 0)
            .max_by_key(|(_, (_, _, order))| *order)
            .map(|(i, _)| i)
        else {
            break;
        };
        columns.remove(drop);
    }
    columns
        .into_iter()
        .map(|(column, width, _)| (column, width))
        .collect()
}

fn status_style(status: Status) -> Style {
    match status {
        Status::Checking | Status::FetchingMetadata | Status::Moving => {
            Style::new().fg(Color::Yellow)
        }
        Status::Downloading => Style::new().fg(Color::Cyan),
        Status::Seeding => Style::new().fg(Color::Green),
        Status::Paused => Style::new().fg(Color::DarkGray),
        Status::Error => Style::new().fg(Color::Red).bold(),
        Status::Stalled => Style::new().fg(Color::Red),
    }
}

/// A progress bar of `width` cells with `label` centred on it; the filled part has a coloured
/// background, so the label stays readable and a monochrome terminal still shows the number.
fn bar(done: u64, total: u64, width: usize, label: &str) -> Line<'static> {
    let fraction = if total == 0 {
        0.0
    } else {
        done as f64 / total as f64
    };
    let filled = ((fraction * width as f64).floor() as usize).min(width);
    let text: Vec<char> = format!("{label:^width$}").chars().collect();
    let head: String = text[..filled.min(text.len())].iter().collect();
    let tail: String = text[filled.min(text.len())..].iter().collect();
    Line::from(vec![
        Span::styled(head, Style::new().fg(Color::Black).bg(Color::Green)),
        Span::styled(tail, Style::new().bg(Color::DarkGray)),
    ])
}

fn render_list(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(LABEL)
        .title(Span::styled(" Torrents ", Style::new().bold()));
    if app.torrents.is_empty() {
        Paragraph::new(Line::from(vec![
            Span::raw(" No torrents yet. Press "),
            Span::styled("a", KEY),
            Span::raw(" to add a .torrent file or a magnet link."),
        ]))
        .block(block)
        .render(area, buf);
        return;
    }
    let columns = list_columns(area.width);
    let mut widths = vec![Constraint::Min(1)];
    widths.extend(columns.iter().map(|&(_, width)| Constraint::Length(width)));
    let header =
        Row::new(std::iter::once(Line::from("Name")).chain(columns.iter().map(|(c, _)| c.title())))
            .style(LABEL);
    let rows = app.torrents.iter().map(|view| {
        Row::new(
            std::iter::once(Line::from(app.display_name(view)))
                .chain(columns.iter().map(|(c, _)| c.cell(view))),
        )
    });
    let highlight = match app.focus {
        Focus::List => Style::new().add_modifier(Modifier::REVERSED),
        Focus::Detail => Style::new().add_modifier(Modifier::BOLD),
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(highlight)
        .highlight_symbol("›")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(app.selected));
    StatefulWidget::render(table, area, buf, &mut state);
}

fn render_detail(app: &App, area: Rect, buf: &mut Buffer) {
    let focused = app.focus == Focus::Detail;
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        LABEL
    };
    let Some(view) = app.current() else {
        let listen = app.listen.map_or_else(String::new, |a| {
            format!(" and listening on {}", text::addr(a))
        });
        Paragraph::new(vec![
            Line::from(format!("Shoal is running{listen}.")),
            Line::default(),
            Line::from(vec![
                Span::raw("Press "),
                Span::styled("a", KEY),
                Span::raw(" to add a torrent, "),
                Span::styled("?", KEY),
                Span::raw(" for every key, "),
                Span::styled("q", KEY),
                Span::raw(" to quit."),
            ]),
        ])
        .block(Block::bordered().border_style(border))
        .wrap(Wrap { trim: true })
        .render(area, buf);
        return;
    };
    let block = Block::bordered()
        .border_style(border)
        .title(Span::styled(
            format!(" {} ", text::fit(&app.display_name(view), 60)),
            Style::new().bold(),
        ))
        .title(
            Line::from(format!(" {} ", &view.id.to_string()[..16]))
                .style(LABEL)
                .right_aligned(),
        );
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 2 {
        return;
    }
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let titles = Tab::ALL.iter().map(|tab| match tab {
        Tab::Peers => format!("Peers ({})", view.stats.peers.len()),
        Tab::Files => format!("Files ({})", view.meta.files.len()),
        Tab::Trackers => format!("Trackers ({})", view.meta.trackers.iter().flatten().count()),
        Tab::Overview => tab.title().to_owned(),
    });
    Tabs::new(titles)
        .select(Tab::ALL.iter().position(|&t| t == app.tab))
        .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan).bold())
        .divider("│")
        .render(tabs, buf);
    match app.tab {
        Tab::Overview => render_overview(view, body, buf),
        Tab::Peers => render_peers(app, view, body, buf),
        Tab::Files => render_files(app, view, body, buf),
        Tab::Trackers => render_trackers(view, body, buf),
    }
}

fn label(text: &str) -> Span<'static> {
    Span::styled(format!("{text} "), LABEL)
}

fn render_overview(view: &TorrentView, area: Rect, buf: &mut Buffer) {
    let stats = &view.stats;
    let [facts, graphs] = Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(area);
    let bar_width = (facts.width as usize).saturating_sub(50).clamp(10, 40);
    let filled = if stats.bytes_total == 0 {
        0
    } else {
        (bar_width as u128 * u128::from(stats.bytes_have) / u128::from(stats.bytes_total)) as usize
    };
    let mut progress = vec![
        label("Progress"),
        Span::styled("█".repeat(filled), Style::new().fg(Color::Green)),
        Span::styled("░".repeat(bar_width - filled), LABEL),
    ];
    progress.extend([
        Span::raw(" "),
        Span::styled(
            text::percent(stats.bytes_have, stats.bytes_total),
            Style::new().bold(),
        ),
        Span::raw(format!(
            "  {} of {}  ",
            text::size(stats.bytes_have),
            text::size(stats.bytes_total)
        )),
        label("ETA"),
        Span::raw(match view.status {
            Status::Downloading => text::eta(view.eta()),
            Status::Seeding => "done".into(),
            _ => "–".into(),
        }),
    ]);
    let n_peers = stats.peers.len();
    let seeds = view.seeds();
    let availability = if seeds > 0 {
        format!("{seeds} seed{}", if seeds == 1 { "" } else { "s" })
    } else if n_peers == 0 {
        "unknown (no peers)".into()
    } else {
        let best = stats.peers.iter().map(|p| p.pieces).max().unwrap_or(0);
        format!(
            "no seed, best peer {}",
            text::percent(u64::from(best), u64::from(stats.pieces_total))
        )
    };
    let status = match view.diagnosis() {
        Some(why) if matches!(view.status, Status::Error | Status::Stalled) => {
            vec![
                label(if view.status == Status::Stalled {
                    "Stalled"
                } else {
                    "Error"
                }),
                Span::styled(why, Style::new().fg(Color::Red).bold()),
            ]
        }
        Some(why) if view.status == Status::Downloading => {
            vec![
                label("Slow"),
                Span::styled(why, Style::new().fg(Color::Yellow)),
            ]
        }
        Some(why) => vec![label("Status"), Span::raw(why)],
        None => {
            let unchoked = stats.peers.iter().filter(|p| !p.peer_choking).count();
            let uploading = stats.peers.iter().filter(|p| !p.am_choking).count();
            vec![
                label("Status"),
                Span::raw(match view.status {
                    Status::Seeding => {
                        format!("complete; uploading to {uploading} of {n_peers} peers")
                    }
                    _ if stats.sequential => {
                        format!("downloading in order from {unchoked} of {n_peers} peers")
                    }
                    _ => format!("downloading from {unchoked} of {n_peers} peers"),
                }),
            ]
        }
    };
    let lines = vec![
        Line::from(progress),
        Line::from(vec![
            label("Down"),
            Span::styled(text::rate(stats.download_rate), Style::new().fg(DOWN)),
            Span::raw("  "),
            label("Up"),
            Span::styled(text::rate(stats.upload_rate), Style::new().fg(UP)),
            Span::raw("  "),
            label("Downloaded"),
            Span::raw(text::size(stats.all_time_downloaded)),
            Span::raw("  "),
            label("Uploaded"),
            Span::raw(text::size(stats.all_time_uploaded)),
            Span::raw("  "),
            label("Ratio"),
            Span::raw(
                view.stats
                    .ratio()
                    .map_or_else(|| "–".into(), |r| format!("{r:.2}")),
            ),
        ]),
        Line::from(vec![
            label("Peers"),
            Span::raw(format!("{n_peers} connected  ")),
            label("Availability"),
            Span::raw(format!("{availability}  ")),
            label("Pieces"),
            Span::raw(format!(
                "{}/{} × {}",
                stats.pieces_have,
                stats.pieces_total,
                crate::format::piece_size(view.meta.piece_length)
            )),
            Span::raw(if stats.hash_failures > 0 {
                format!("  {} failed hash checks", stats.hash_failures)
            } else {
                String::new()
            }),
        ]),
        Line::from(status),
    ];
    Paragraph::new(lines).render(facts, buf);
    if graphs.height < 4 {
        return;
    }
    let [chart, map] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(graphs);
    render_chart(view, chart, buf);
    render_pieces(view, map, buf);
}

/// Down and up rates over the last minutes, the window growing a minute at a time up to five.
fn render_chart(view: &TorrentView, area: Rect, buf: &mut Buffer) {
    let history = &view.history;
    let n = history.down.len();
    let window = n.div_ceil(60).clamp(1, 5) * 60;
    let points = |samples: &std::collections::VecDeque<u64>| -> Vec<(f64, f64)> {
        samples
            .iter()
            .enumerate()
            .map(|(i, &rate)| ((i + 1) as f64 - n as f64, rate as f64))
            .collect()
    };
    let down = points(&history.down);
    let up = points(&history.up);
    let peak = history
        .down
        .iter()
        .chain(&history.up)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1024);
    let datasets = vec![
        Dataset::default()
            .name("↓ down")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(DOWN))
            .data(&down),
        Dataset::default()
            .name("↑ up")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(UP))
            .data(&up),
    ];
    Chart::new(datasets)
        .block(
            Block::bordered()
                .border_style(LABEL)
                .title(format!(" Speed, last {} min ", window / 60)),
        )
        .x_axis(
            Axis::default()
                .bounds([-(window as f64), 0.0])
                .labels([format!("-{}m", window / 60), "now".to_owned()])
                .style(LABEL),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, peak as f64 * 1.1])
                .labels(["0".to_owned(), text::rate(peak)])
                .style(LABEL),
        )
        .render(area, buf);
}

/// The pieces map, scaled to the pane: each cell stands for the pieces that fall in its share of the
/// torrent (several when pieces outnumber cells, part of one when cells outnumber pieces); a cell is
/// full when all of its pieces are verified, dark when one is being downloaded, shaded when some are
/// verified.
fn render_pieces(view: &TorrentView, area: Rect, buf: &mut Buffer) {
    let stats = &view.stats;
    let block = Block::bordered()
        .border_style(LABEL)
        .title(format!(
            " Pieces {}/{} ",
            stats.pieces_have, stats.pieces_total
        ))
        .title_bottom(Line::from(" █ have ▓ downloading ▒ part · missing ").right_aligned());
    let inner = block.inner(area);
    block.render(area, buf);
    let cells = usize::from(inner.width) * usize::from(inner.height);
    let n = stats.have.len();
    if cells == 0 || n == 0 {
        return;
    }
    let mut in_flight = vec![false; n];
    for &piece in &stats.downloading {
        if let Some(slot) = in_flight.get_mut(piece as usize) {
            *slot = true;
        }
    }
    for cell in 0..cells {
        let start = cell * n / cells;
        let end = ((cell + 1) * n / cells).max(start + 1).min(n);
        let pieces = &stats.have[start..end];
        let x = inner.x + (cell % usize::from(inner.width)) as u16;
        let y = inner.y + (cell / usize::from(inner.width)) as u16;
        let have = pieces.iter().filter(|&&h| h).count();
        let (symbol, color) = if have == pieces.len() {
            ("█", Color::Green)
        } else if in_flight[start..end].contains(&true) {
            ("▓", Color::Cyan)
        } else if have > 0 {
            ("▒", Color::Yellow)
        } else {
            ("·", Color::DarkGray)
        };
        if let Some(target) = buf.cell_mut((x, y)) {
            target.set_symbol(symbol).set_fg(color);
        }
    }
}

/// qBittorrent's peer flags, explained under the table.
fn peer_flags(peer: &PeerStats) -> String {
    let mut flags = String::new();
    if peer.am_interested {
        flags.push(if peer.peer_choking { 'd' } else { 'D' });
    } else if !peer.peer_choking {
        flags.push('K');
    }
    if peer.peer_interested {
        flags.push(if peer.am_choking { 'u' } else { 'U' });
    } else if !peer.am_choking {
        flags.push('?');
    }
    if !peer.outgoing {
        flags.push('I');
    }
    if peer.encrypted {
        flags.push('E');
    }
    flags
}

fn render_peers(app: &App, view: &TorrentView, area: Rect, buf: &mut Buffer) {
    let peers = app.sorted_peers();
    if peers.is_empty() {
        let why = view
            .diagnosis()
            .unwrap_or_else(|| "no peers connected".into());
        Paragraph::new(format!("No peers: {why}."))
            .style(LABEL)
            .render(area, buf);
        return;
    }
    let [table_area, legend] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(2)]).areas(area);
    let arrow = if app.peer_sort_reversed { "▲" } else { "▼" };
    let title = |name: &'static str, key: PeerSort| -> String {
        if app.peer_sort == key {
            format!("{name}{arrow}")
        } else {
            name.to_owned()
        }
    };
    let header = Row::new(vec![
        Line::from(title("Address", PeerSort::Address)),
        Line::from(title("Client", PeerSort::Client)),
        Line::from("Flags"),
        Line::from(title("Down", PeerSort::Down)).right_aligned(),
        Line::from(title("Up", PeerSort::Up)).right_aligned(),
        Line::from(title("Has", PeerSort::Progress)).right_aligned(),
    ])
    .style(LABEL);
    let total = u64::from(view.stats.pieces_total);
    let rows = peers.iter().map(|peer| {
        Row::new(vec![
            Line::from(text::addr(peer.addr)),
            Line::from(peer.client.clone()),
            Line::from(peer_flags(peer)),
            Line::styled(text::rate(peer.download_rate), Style::new().fg(DOWN)).right_aligned(),
            Line::styled(text::rate(peer.upload_rate), Style::new().fg(UP)).right_aligned(),
            Line::from(text::percent(u64::from(peer.pieces), total)).right_aligned(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(22),
            Constraint::Min(10),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(11),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .column_spacing(1)
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .highlight_symbol("›")
    .highlight_spacing(HighlightSpacing::Always);
    let selected = (app.focus == Focus::Detail).then_some(app.detail_row);
    StatefulWidget::render(
        table,
        table_area,
        buf,
        &mut TableState::default().with_selected(selected),
    );
    Paragraph::new(
        "Flags: D downloading (d: they choke us) · U uploading (u: we choke them) · \
         K, ? unchoked but not interested · I incoming · E encrypted",
    )
    .style(LABEL)
    .wrap(Wrap { trim: true })
    .render(legend, buf);
}

/// A row of the Files tree.
struct FileRow {
    depth: usize,
    name: String,
    is_dir: bool,
    length: u64,
    have: u64,
    /// The file's index in torrent order (none for a folder).
    file: Option<usize>,
}

/// The file tree in [`TorrentMeta::tree_order`], folders before their files, each folder summing its
/// files' sizes and progress.
fn file_tree(meta: &TorrentMeta, have: &[bool]) -> Vec<FileRow> {
    let mut rows: Vec<FileRow> = Vec::new();
    // Row indices of the folders the current file is in, outermost first.
    let mut open: Vec<usize> = Vec::new();
    for index in meta.tree_order() {
        let file = &meta.files[index];
        let (name, dirs) = file
            .path
            .split_last()
            .map_or(("", &[][..]), |(n, d)| (n.as_str(), d));
        let common = open
            .iter()
            .zip(dirs)
            .take_while(|(row, dir)| rows[**row].name == **dir)
            .count();
        open.truncate(common);
        for dir in &dirs[common..] {
            open.push(rows.len());
            rows.push(FileRow {
                depth: open.len() - 1,
                name: dir.clone(),
                is_dir: true,
                length: 0,
                have: 0,
                file: None,
            });
        }
        let file_have = meta.file_have(file, have);
        for &row in &open {
            rows[row].length += file.length;
            rows[row].have += file_have;
        }
        rows.push(FileRow {
            depth: open.len(),
            name: name.to_owned(),
            is_dir: false,
            length: file.length,
            have: file_have,
            file: Some(index),
        });
    }
    rows
}

fn render_files(app: &App, view: &TorrentView, area: Rect, buf: &mut Buffer) {
    let tree = file_tree(&view.meta, &view.stats.have);
    let [table_area, note] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    let header = Row::new(vec![
        Line::from("Name"),
        Line::from("Size").right_aligned(),
        Line::from("Progress"),
        Line::from("Priority"),
    ])
    .style(LABEL);
    let selected_file = view.meta.tree_order().get(app.detail_row).copied();
    let mut selected_row = None;
    let rows: Vec<Row<'_>> = tree
        .iter()
        .enumerate()
        .map(|(i, row)| {
            if row.file.is_some() && row.file == selected_file {
                selected_row = Some(i);
            }
            let name = format!(
                "{}{}{}",
                "  ".repeat(row.depth),
                row.name,
                if row.is_dir { "/" } else { "" }
            );
            let priority = row
                .file
                .and_then(|f| view.priorities.get(f))
                .map_or("", |p| p.label());
            Row::new(vec![
                Line::from(name),
                Line::from(text::size(row.length)).right_aligned(),
                bar(
                    row.have,
                    row.length,
                    8,
                    &text::percent(row.have, row.length),
                ),
                Line::from(priority),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(10),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .header(header)
    .column_spacing(1)
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .highlight_symbol("›")
    .highlight_spacing(HighlightSpacing::Always);
    let selected = if app.focus == Focus::Detail {
        selected_row
    } else {
        None
    };
    StatefulWidget::render(
        table,
        table_area,
        buf,
        &mut TableState::default().with_selected(selected),
    );
    Line::from(vec![
        Span::styled("Space", KEY),
        Span::styled(" cycles a file's priority: skip, low, normal, high", LABEL),
    ])
    .render(note, buf);
}

fn render_trackers(view: &TorrentView, area: Rect, buf: &mut Buffer) {
    let mut lines = Vec::new();
    if view.meta.trackers.is_empty() {
        lines.push(Line::styled("This torrent lists no trackers.", LABEL));
    }
    for (tier, urls) in view.meta.trackers.iter().enumerate() {
        for url in urls {
            lines.push(Line::from(vec![
                label(&format!("tier {}", tier + 1)),
                Span::raw(text::fit(url, usize::from(area.width).saturating_sub(8))),
            ]));
            let status = match view.stats.trackers.iter().find(|t| &t.url == url) {
                None => Span::styled("waiting for its first answer", LABEL),
                Some(tracker) => match &tracker.last {
                    Ok(peers) => {
                        let count =
                            |n: Option<u32>| n.map_or_else(|| "?".into(), |n| n.to_string());
                        let mut line = format!(
                            "ok: {peers} peers, {} seeders, {} leechers",
                            count(tracker.seeders),
                            count(tracker.leechers)
                        );
                        if let Some(warning) = &tracker.warning {
                            line.push_str(&format!("; warning: {}", text::sanitize(warning)));
                        }
                        Span::raw(line)
                    }
                    Err(error) => Span::styled(format!("error: {}", text::sanitize(error)), ERROR),
                },
            };
            lines.push(Line::from(vec![Span::raw("       "), status]));
        }
    }
    lines.push(Line::default());
    let off = if view.meta.private {
        "off: private torrent (BEP 27)".to_owned()
    } else {
        match view.stats.dht_peers {
            None => "PEX on; DHT off".to_owned(),
            Some(n) => format!("PEX on; DHT on, {n} peers found"),
        }
    };
    lines.push(Line::from(vec![label("DHT, PEX"), Span::raw(off)]));
    lines.push(Line::from(vec![
        label("Peers"),
        Span::raw(format!(
            "{} connected, from trackers, the DHT, PEX and addresses given",
            view.stats.peers.len()
        )),
    ]));
    Paragraph::new(lines).render(area, buf);
}

fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    let mut hints = vec![("↑↓", "select")];
    match (app.focus, app.tab) {
        (Focus::List, _) => hints.push(("Enter", "details")),
        (Focus::Detail, Tab::Peers) => hints.extend([("s", "sort"), ("S", "reverse")]),
        (Focus::Detail, Tab::Files) => hints.push(("Space", "priority")),
        (Focus::Detail, _) => {}
    }
    if app.focus == Focus::Detail {
        hints.push(("Esc", "list"));
    }
    hints.extend([
        ("Tab", "views"),
        ("a", "add"),
        ("p", "pause"),
        ("d", "remove"),
        ("?", "help"),
        ("q", "quit"),
    ]);
    hints
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    if let Some(message) = &app.message {
        Line::styled(format!(" {message}"), Style::new().fg(Color::Yellow)).render(area, buf);
        return;
    }
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in hints(app) {
        spans.push(Span::styled(key, KEY));
        spans.push(Span::styled(format!(" {what}  "), LABEL));
    }
    Line::from(spans).render(area, buf);
}

/// A `width` × `height` rectangle in the middle of `area`, shrunk to fit.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move the selection"),
    ("PgUp PgDn g G", "jump by ten, to the top, to the end"),
    ("Enter", "open the selected torrent's details"),
    ("Esc  ← h", "back to the torrent list"),
    ("Tab  Shift-Tab", "next / previous view (→ l: next)"),
    ("1 2 3 4", "Overview, Peers, Files, Trackers"),
    ("a", "add a .torrent file or a magnet link"),
    ("p", "pause or resume the selected torrent"),
    ("o", "download it in order (to play a file early), or not"),
    ("d  Del", "remove it (asks about its data)"),
    ("m", "move its data to another directory"),
    ("q  Ctrl-C", "quit (asks while transfers run)"),
    ("?  F1", "this help"),
    ("s  S", "Peers: sort by the next column, reverse"),
    ("Space", "Files: cycle skip, low, normal, high"),
];

fn render_help(area: Rect, buf: &mut Buffer) {
    let popup = centered(area, 70, HELP.len() as u16 + 6);
    Clear.render(popup, buf);
    let mut lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<15} "), KEY),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(
        " Sizes and rates in bytes (1 KiB = 1024 B). ETA: ~10 s average.",
        LABEL,
    ));
    lines.push(Line::styled(" Slow? The Overview tab says why.", LABEL));
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .border_style(Style::new().fg(Color::Cyan))
                .title(" Keys ")
                .title_bottom(Line::from(" any key closes ").right_aligned()),
        )
        .render(popup, buf);
}

fn render_prompt(typed: &str, title: &str, hint: &str, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(4).min(100);
    let popup = Rect {
        height: 3.min(area.height),
        y: area.y + area.height.saturating_sub(5),
        ..centered(area, width, 3)
    };
    Clear.render(popup, buf);
    // Show the end of a long path: that is where the typing happens.
    let room = usize::from(width.saturating_sub(3));
    let chars: Vec<char> = typed.chars().collect();
    let visible: String = chars[chars.len().saturating_sub(room)..].iter().collect();
    Paragraph::new(Line::from(vec![
        Span::raw(visible),
        Span::styled("█", Style::new().fg(Color::Cyan)),
    ]))
    .block(
        Block::bordered()
            .border_style(Style::new().fg(Color::Cyan))
            .title(title.to_owned())
            .title_bottom(Line::from(hint.to_owned()).right_aligned()),
    )
    .render(popup, buf);
}

fn render_dialog(title: &str, lines: Vec<Line<'_>>, area: Rect, buf: &mut Buffer) {
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 4;
    let popup = centered(
        area,
        width.max(title.len() as u16 + 4),
        lines.len() as u16 + 2,
    );
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .border_style(Style::new().fg(Color::Yellow))
                .title(title.to_owned()),
        )
        .alignment(Alignment::Center)
        .render(popup, buf);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crossterm::event::{KeyCode, KeyEvent};

    use super::*;
    use crate::tui::app::tests::{app_with, meta, stats};

    /// Draws `app` on a `width` × `height` screen and returns its lines.
    fn screen(app: &App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| frame.render_widget(app, frame.area()))
            .unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    fn press(app: &mut App, code: KeyCode) {
        app.on_key(KeyEvent::from(code));
    }

    /// The torrent of `app_with` after a few snapshots, so the chart has a history.
    fn downloading() -> App {
        let mut app = app_with("demo", 10);
        let id = app.torrents[0].id;
        for have in 11..=20 {
            app.on_update(id, stats("demo", have));
        }
        app
    }

    #[test]
    fn list_shows_every_column_on_a_wide_screen_and_the_essentials_at_80() {
        let app = downloading();
        let wide = screen(&app, 100, 30);
        assert_eq!(
            wide[2].trim_end(),
            " Name                             Size Progress State             Down         Up Peers    ETA Ratio"
        );
        assert_eq!(
            wide[3].trim_end(),
            "›demo                         64.0 MiB  31.2%   downloading 4.00 MiB/s      0 B/s   2/2    11s  0.00"
        );
        let narrow = screen(&app, 80, 24);
        assert_eq!(
            narrow[2].trim_end(),
            " Name                     Size Progress State             Down         Up    ETA"
        );
        assert_eq!(
            narrow[3].trim_end(),
            "›demo                 64.0 MiB  31.2%   downloading 4.00 MiB/s      0 B/s    11s"
        );
        assert_eq!(
            narrow[0].trim_end(),
            " Shoal   1 torrent  ↓ 4.00 MiB/s  ↑ 0 B/s  listening on 127.0.0.1:6881   ? help"
        );
    }

    #[test]
    fn overview_shows_progress_rates_diagnosis_chart_and_pieces() {
        let app = downloading();
        let lines = screen(&app, 80, 24);
        let text = lines.join("\n");
        assert!(lines[5].starts_with("│ Overview │ Peers (2) │ Files (2) │ Trackers (1)"));
        assert!(
            lines[6].contains("31.2%  20.0 MiB of 64.0 MiB  ETA 11s"),
            "{text}"
        );
        assert!(
            lines[7].contains("Down 4.00 MiB/s  Up 0 B/s  Downloaded 20.0 MiB"),
            "{text}"
        );
        assert!(
            lines[8].contains("Availability 2 seeds  Pieces 20/64 × 1 MiB"),
            "{text}"
        );
        assert!(
            lines[9].contains("Status downloading from 2 of 2 peers"),
            "{text}"
        );
        assert!(text.contains("Speed, last 1 min"), "{text}");
        assert!(
            text.contains("4.00 MiB/s│"),
            "the chart's peak label: {text}"
        );
        assert!(text.contains("Pieces 20/64"), "{text}");
        // 20 of 64 pieces in a 31 × 9 map: the first 20/64 of the cells are full.
        let map: String = lines[12..21]
            .iter()
            .flat_map(|l| l.chars().skip(46))
            .collect();
        assert!(map.contains('█') && map.contains('·'), "{text}");
        // Pieces 20 and 21 are being downloaded.
        assert!(map.contains('▓'), "{text}");
        let full = map.matches('█').count();
        assert!((80..=95).contains(&full), "{full} full cells:\n{text}");
    }

    #[test]
    fn a_magnet_link_shows_its_metadata_stage_and_why_it_waits() {
        let mut app = App::new(None);
        let id = shoal_metainfo::InfoHash([7; 20]);
        let mut waiting = shoal_session::TorrentStats {
            name: "ubuntu.iso".into(),
            state: shoal_session::TorrentState::FetchingMetadata,
            metadata: Some(shoal_session::MetadataProgress {
                known_addresses: 4,
                ..Default::default()
            }),
            dht_peers: Some(0),
            ..Default::default()
        };
        app.add_torrent(TorrentMeta::unknown(id), waiting.clone());
        let text = screen(&app, 80, 24).join("\n");
        assert!(
            text.contains("ubuntu.iso") && text.contains("metadata"),
            "{text}"
        );
        assert!(
            text.contains("Status no metadata yet: none of 4 known addresses answered; no"),
            "{text}"
        );
        waiting.metadata = Some(shoal_session::MetadataProgress {
            peers: 3,
            sources: 3,
            pieces_have: 1,
            pieces_total: 2,
            known_addresses: 4,
            hash_failures: 0,
        });
        app.on_update(id, waiting);
        let text = screen(&app, 80, 24).join("\n");
        assert!(
            text.contains("fetching metadata from 3 peers (1/2 pieces)"),
            "{text}"
        );
    }

    #[test]
    fn overview_says_why_a_download_is_slow() {
        let mut app = downloading();
        let id = app.torrents[0].id;
        let mut choked = stats("demo", 20);
        for peer in &mut choked.peers {
            peer.peer_choking = true;
        }
        app.on_update(id, choked);
        assert!(screen(&app, 80, 24)[9].contains("Slow choked by all 2 peers"));
        let mut failed = stats("demo", 20);
        failed.state = shoal_session::TorrentState::Error;
        failed.error = Some("disk full".into());
        app.on_update(id, failed);
        let lines = screen(&app, 80, 24);
        assert!(lines[9].contains("Error disk full"));
        assert!(lines[3].contains("error"));
    }

    #[test]
    fn completed_torrent_reads_100_and_seeding() {
        let mut app = downloading();
        let id = app.torrents[0].id;
        app.on_update(id, stats("demo", 64));
        let lines = screen(&app, 100, 30);
        assert!(lines[3].contains(" 100%   seeding"), "{}", lines[3]);
        assert!(lines[6].contains("100%  64.0 MiB of 64.0 MiB  ETA done"));
    }

    #[test]
    fn empty_session_invites_to_press_a() {
        let app = App::new(Some("0.0.0.0:6881".parse().unwrap()));
        let lines = screen(&app, 80, 24);
        assert_eq!(
            lines[2].trim_end(),
            " No torrents yet. Press a to add a .torrent file or a magnet link."
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Press a to add a torrent, ? for every key"))
        );
    }

    #[test]
    fn peers_tab_lists_address_client_flags_rates_and_sorts() {
        let mut app = downloading();
        let id = app.torrents[0].id;
        let mut next = stats("demo", 20);
        next.peers[1].addr = "[::ffff:127.0.0.9]:51413".parse().unwrap();
        next.peers[1].client = "Transmission 4.0.5".into();
        next.peers[1].peer_choking = true;
        next.peers[1].outgoing = false;
        next.peers[1].encrypted = true;
        next.peers[1].pieces = 32;
        app.on_update(id, next);
        press(&mut app, KeyCode::Tab);
        let lines = screen(&app, 80, 24);
        assert_eq!(
            lines[6],
            "│ Address                Client            Flags       Down▼          Up    Has│"
        );
        assert_eq!(
            lines[7],
            "│ 127.0.0.2:6881         Shoal 0.1.0       D      3.00 MiB/s       0 B/s   100%│"
        );
        assert_eq!(
            lines[8],
            "│ 127.0.0.9:51413        Transmission 4.0. dIE    1.00 MiB/s       0 B/s  50.0%│"
        );
        assert!(lines[20].starts_with("│Flags: D downloading"));
        press(&mut app, KeyCode::Char('s'));
        press(&mut app, KeyCode::Char('s'));
        let lines = screen(&app, 80, 24);
        assert!(lines[6].contains("Has▼"));
        press(&mut app, KeyCode::Char('S'));
        let lines = screen(&app, 80, 24);
        assert!(lines[6].contains("Has▲"));
        assert!(lines[7].contains("127.0.0.9:51413"));
    }

    #[test]
    fn files_tab_is_a_tree_with_progress_and_priorities() {
        let mut app = downloading();
        press(&mut app, KeyCode::Char('3'));
        press(&mut app, KeyCode::Enter);
        let lines = screen(&app, 80, 24);
        assert_eq!(
            lines[6],
            "│ Name                                                   Size Progress Priority│"
        );
        assert_eq!(
            lines[7],
            "│ extras/                                            16.0 MiB   0.0%           │"
        );
        assert_eq!(
            lines[8],
            "│›  notes.txt                                        16.0 MiB   0.0%   normal  │"
        );
        assert_eq!(
            lines[9],
            "│ movie.mkv                                          48.0 MiB  41.6%   normal  │"
        );
        assert!(lines[21].contains("Space cycles a file's priority"));
    }

    #[test]
    fn trackers_tab_lists_tiers_and_dht() {
        let mut app = downloading();
        press(&mut app, KeyCode::Char('4'));
        let lines = screen(&app, 80, 24);
        assert!(lines[6].starts_with("│tier 1 http://127.0.0.1:6969/announce"));
        assert!(lines[7].contains("waiting for its first answer"));
        assert!(lines[9].contains("DHT, PEX PEX on"));
    }

    #[test]
    fn trackers_tab_shows_each_answer() {
        let mut app = downloading();
        let id = app.torrents[0].id;
        let mut now = stats("demo", 20);
        now.trackers = vec![shoal_session::TrackerStats {
            url: "http://127.0.0.1:6969/announce".into(),
            last: Ok(12),
            seeders: Some(3),
            leechers: Some(9),
            warning: None,
        }];
        app.on_update(id, now.clone());
        press(&mut app, KeyCode::Char('4'));
        let lines = screen(&app, 80, 24);
        assert!(
            lines[7].contains("ok: 12 peers, 3 seeders, 9 leechers"),
            "{}",
            lines[7]
        );
        now.trackers[0].last = Err("tracker said: \x1b[31mgo away".into());
        app.on_update(id, now);
        let lines = screen(&app, 80, 24);
        assert!(lines[7].contains("error: tracker said:"), "{}", lines[7]);
        assert!(
            !lines[7].contains('\x1b'),
            "control characters are stripped"
        );
    }

    #[test]
    fn twins_are_told_apart_on_screen() {
        let mut app = downloading();
        app.add_torrent(meta(0xcd), stats("demo", 5));
        let lines = screen(&app, 100, 30);
        assert!(lines[3].starts_with("›demo [abababab]"));
        assert!(lines[4].starts_with(" demo [cdcdcdcd]"));
        assert!(lines[5].starts_with("┌ demo [abababab] "));
    }

    #[test]
    fn hostile_names_reach_the_screen_without_escapes() {
        let mut app = App::new(None);
        let mut evil = stats("\x1b[2J\x1b]0;owned\x07evil\u{202e}gnp.exe", 3);
        evil.peers[0].client = "\x1b[31mred".into();
        app.add_torrent(meta(1), evil);
        press(&mut app, KeyCode::Tab);
        let text = screen(&app, 80, 24).join("");
        assert!(!text.contains('\x1b') && !text.contains('\x07') && !text.contains('\u{202e}'));
        assert!(text.contains("[2J]0;ownedevilgnp.exe"));
        assert!(text.contains("[31mred"));
    }

    #[test]
    fn help_lists_every_key() {
        let mut app = downloading();
        press(&mut app, KeyCode::Char('?'));
        let text = screen(&app, 80, 24).join("\n");
        for (keys, what) in HELP {
            assert!(
                text.contains(keys) && text.contains(what),
                "{keys}:\n{text}"
            );
        }
        press(&mut app, KeyCode::Char('x'));
        assert!(!screen(&app, 80, 24).join("").contains("any key closes"));
    }

    #[test]
    fn dialogs_for_quit_remove_and_add() {
        let mut app = downloading();
        press(&mut app, KeyCode::Char('q'));
        let text = screen(&app, 80, 24).join("\n");
        assert!(
            text.contains("Quit Shoal?") && text.contains("Transfers are running. Quit anyway?")
        );
        press(&mut app, KeyCode::Esc);
        press(&mut app, KeyCode::Char('d'));
        let text = screen(&app, 80, 24).join("\n");
        assert!(text.contains("Remove “demo”?"), "{text}");
        assert!(
            text.contains("r keep the data   D delete the data   Esc cancel"),
            "{text}"
        );
        press(&mut app, KeyCode::Esc);
        press(&mut app, KeyCode::Char('a'));
        for c in "~/x.torrent".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        let lines = screen(&app, 80, 24);
        assert!(lines[19].contains("Add: path to a .torrent file, or a magnet link"));
        assert!(lines[20].contains("│~/x.torrent█"));
        press(&mut app, KeyCode::Esc);
        press(&mut app, KeyCode::Char('m'));
        for c in "/srv/done".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        let lines = screen(&app, 80, 24);
        assert!(
            lines[19].contains("Move “demo” to the directory:"),
            "{}",
            lines[19]
        );
        assert!(lines[20].contains("│/srv/done█"));
        assert!(lines[21].contains("Enter move · Esc cancel"));
    }

    #[test]
    fn footer_shows_context_hints_then_messages() {
        let mut app = downloading();
        assert!(screen(&app, 80, 24)[23].starts_with(" ↑↓ select  Enter details  Tab views"));
        press(&mut app, KeyCode::Char('2'));
        press(&mut app, KeyCode::Enter);
        assert!(screen(&app, 80, 24)[23].starts_with(" ↑↓ select  s sort  S reverse  Esc list"));
        app.notify("added x");
        assert_eq!(screen(&app, 80, 24)[23].trim_end(), " added x");
    }

    #[test]
    fn any_size_renders_without_panicking() {
        let mut app = downloading();
        app.add_torrent(meta(0xcd), stats("second", 0));
        let keys = [
            KeyCode::Char('1'),
            KeyCode::Char('2'),
            KeyCode::Char('3'),
            KeyCode::Char('4'),
            KeyCode::Char('?'),
            KeyCode::Char('a'),
        ];
        for key in keys {
            let mut app = app.clone();
            press(&mut app, KeyCode::Enter);
            press(&mut app, key);
            for (width, height) in [
                (0, 0),
                (1, 1),
                (10, 3),
                (29, 7),
                (30, 8),
                (45, 12),
                (80, 24),
                (250, 70),
            ] {
                screen(&app, width, height);
            }
        }
        assert_eq!(screen(&app, 20, 4)[0].trim_end(), "Shoal: enlarge the");
        assert_eq!(
            screen(&app, 60, 15)[0].trim_end(),
            " Shoal   2 torrents  ↓ 8.00 MiB/s  ↑ 0 B/s           ? help"
        );
    }
}
